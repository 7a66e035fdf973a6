-- Dashboard 2 (customer journey) over the journeys of migration 0007: the funnel of WeCom
-- contacts and the touchpoints of resolved customers, each with the region of its channel
-- (from channel_health_latest) so that the dashboards can filter by region. Dashboard 3 reads
-- channel_health_latest itself.

-- One row per customer with a WeCom contact add: the channel (store) of the first add, when,
-- how far wecom_added -> store_visit -> purchase got within 72 h (level 1..3), and whether
-- the 72 h have passed (final).
CREATE VIEW IF NOT EXISTS dashboard_journey_adds AS
SELECT
    f.customer_id AS customer_id,
    f.channel AS channel,
    h.region AS region,
    f.added_at AS added_at,
    f.level AS level,
    f.final AS final
FROM journey_funnel_customers AS f
LEFT JOIN (SELECT channel_id, region FROM channel_health_latest) AS h
    ON f.channel = h.channel_id;

-- One row per journey step under the customer's current id, with the medium of the touch
-- (WeCom, mini program, store till, dealer order). An event can make two steps (a till
-- line 1 is a store visit and a purchase): count touchpoints as distinct event ids.
CREATE VIEW IF NOT EXISTS dashboard_journey_touchpoints AS
SELECT
    s.event_id AS event_id,
    s.step AS step,
    s.customer_id AS customer_id,
    s.channel AS channel,
    s.channel_kind AS channel_kind,
    multiIf(
        s.event_type = 'wecom.message', 'WeCom',
        s.event_type = 'miniprogram.event', 'mini program',
        s.event_type = 'pos.transaction', 'store till',
        s.event_type = 'erp.order', 'dealer order',
        s.event_type
    ) AS touch,
    h.region AS region,
    s.occurred_at AS occurred_at
FROM journey_steps_resolved AS s
LEFT JOIN (SELECT channel_id, region FROM channel_health_latest) AS h
    ON s.channel = h.channel_id;
