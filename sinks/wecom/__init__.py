"""WeCom (企业微信) application messages: store tasks sent to the staff of their store."""
