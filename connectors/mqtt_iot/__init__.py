"""IoT device telemetry over MQTT (subscribed, QoS 1) -> ``iot.telemetry``."""
