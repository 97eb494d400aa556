"""A built-in stand-in for WeChat's far side, so the embedded default works without a WeChat account.

With no DATABASE_URL and no WeChat credentials, `infra.settings` turns the sandbox on: it fills the WeChat
settings with a sandbox mini-program and merchant whose API hosts are routes of our own server
(`{PUBLIC_BASE_URL}/sandbox/wechat/` and `/sandbox/wechat-pay/`). Our production code (infra/wechat.py,
services/payments/*) then runs unchanged and talks real HTTP to them, in WeChat's own wire formats (JSON with
errcodes; WeChat Pay v2 XML with MD5 signatures; refund notifications encrypted under md5(API key)):

- login: any `wx.login()` code logs in, and the same code is always the same shopper;
- phone: any `getPhoneNumber` code binds a phone (an 11-digit code binds that number);
- content security: text passes unless it contains one of RISKY_WORDS (risky) or REVIEW_WORDS (held for
  review); images likewise by their URL, the verdict pushed a moment later as WeChat's signed and encrypted
  `wxa_media_check` event to our message endpoint;
- WeChat Pay: prepay answers a prepay_id; `sandboxPay(orderId)` plays the shopper paying in WeChat (the sandbox
  posts a signed payment notification to our notify URL); a refund is accepted and its notification follows
  on its own a moment later. Every payment made with it is marked (`Payment.sandbox`, transaction ids
  starting with SANDBOX).

It can never serve production: settings refuse WECHAT_SANDBOX=true next to DATABASE_URL or WeChat credentials,
and `serve` then exits with the reason. Its state lives in the one process the embedded default allows.

This package's root holds only constants (`infra.settings` imports it); the routes are in `routes.py`.
"""

from __future__ import annotations

APPID = "wxsandbox0000000"
MCH_ID = "1900000000"
API_PATH = "/sandbox/wechat"
PAY_PATH = "/sandbox/wechat-pay"
TRANSACTION_PREFIX = "SANDBOX"
# Content security: text (or an image URL) containing any of these is risky, or held for review.
RISKY_WORDS = ("违禁", "sandbox-risky")
REVIEW_WORDS = ("待审", "sandbox-review")
# Where our server takes WeChat's message push (main.py serves it); media check verdicts go there.
MESSAGE_PUSH_PATH = "/wechat/message"
