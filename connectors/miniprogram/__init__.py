"""WeChat mini-program tracking events over HTTP JSON -> ``miniprogram.event``."""
