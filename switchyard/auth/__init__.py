"""Authentication at the HTTP edge: who is calling, decided once per request.

``Authenticator`` turns request headers into a ``Caller`` (JWT bearer token or
API key); ``AuthenticationMiddleware`` puts it into the ASGI scope, or answers
401 before any upstream is called.
"""
