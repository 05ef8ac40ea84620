"""Schemathesis hooks for .ci/schemathesis.

`cargo lambda watch` cannot turn a request body that is not UTF-8 into a Lambda event and
answers 500 itself, before any function runs (API Gateway base64-encodes such a body instead;
the functions' handler tests cover that case). Such bodies are left out of the run.
"""

import schemathesis


@schemathesis.hook
def filter_body(ctx, body):
    # `format: binary` bodies (the proxy's) come wrapped, their bytes in `.data`.
    data = getattr(body, "data", None)
    if isinstance(data, (bytes, bytearray)):
        body = data
    if isinstance(body, (bytes, bytearray)):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    # A text body (the proxy takes any media type, so a `text/*` one is generated as a
    # string) with lone surrogates is not UTF-8 either once sent.
    if isinstance(body, str):
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True

