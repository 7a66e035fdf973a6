"""WeCom (企业微信) callback receiver: encrypted customer-service messages -> ``wecom.message``."""
