#!/usr/bin/env python3
"""Reference signatures for SigV4Tests, computed by botocore.

Signs a fixed set of S3 requests with botocore's own signers -- header auth
(botocore.auth.S3SigV4Auth) and presigned query auth (botocore.auth.S3SigV4QueryAuth) --
at a fixed timestamp, and prints one JSON document holding, for every case, both the
inputs (so the Swift test rebuilds the very same request) and botocore's results.

Request URLs are built the way botocore's REST serializer builds them: the object key
with percent_encode(key, safe='/~') (the "{Key+}" greedy label) and query parameters
with percent_encode (safe '-._~'). The Swift test checks that S3Location produces the
same URLs before comparing signatures.

Exit status: 0 on success, 2 when botocore cannot be imported (message on stderr).
"""

import datetime
import json
import sys
from unittest import mock

try:
    import botocore
    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials
    from botocore.utils import percent_encode
except ImportError as error:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"botocore_sign.py: cannot import botocore ({error}); install it with "
        "'pip install botocore' or 'apt-get install python3-botocore'\n"
    )
    sys.exit(2)

TIMESTAMP = datetime.datetime(2024, 2, 29, 23, 59, 58)  # leap day, UTC
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# A token with the characters that need query encoding (+ / =).
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE+token/with=specials=="

MINIO = "http://127.0.0.1:9000"
UNICODE_KEY = "backups/snap shot/データ+plus=eq~tilde.bin"
CONTINUATION = "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=+abc def"
UPLOAD_ID = "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA--+/="

# kind: "header" (Authorization header) or "query" (presigned URL).
# key None means a bucket-level request. query: list of [name, value|None] in URL order.
CASES = [
    dict(name="get-object-unicode-key", kind="header", method="GET", bucket="bos-backup",
         region="us-east-1", endpoint=None, addressing="virtual", key=UNICODE_KEY, body=""),
    dict(name="get-object-range", kind="header", method="GET", bucket="bos-backup",
         region="eu-central-1", endpoint=None, addressing="virtual", key="data/ab/abcdef",
         headers={"Range": "bytes=0-1023"}, body=""),
    dict(name="put-object-payload-minio-token", kind="header", method="PUT", bucket="bos-backup",
         region="us-east-1", endpoint=MINIO, addressing="path", key="repo/data/00/0011aabb",
         headers={"Content-Type": "application/octet-stream", "Content-Length": "15",
                  "x-amz-meta-bos-checksum": "  sha256:abc   def  "},
         body="hello bosbackup", token=True),
    dict(name="put-object-unsigned-payload", kind="header", method="PUT", bucket="bos-backup",
         region="us-west-2", endpoint=None, addressing="virtual", key="repo/index/a=b+c.idx",
         headers={"Content-Length": "4"}, body="abcd", unsigned=True),
    dict(name="head-object-reserved-chars", kind="header", method="HEAD", bucket="bos-backup",
         region="us-east-1", endpoint=MINIO, addressing="path",
         key="odd/!'()*$&,;:@[]%25 #?.txt", body=""),
    dict(name="delete-object-token", kind="header", method="DELETE", bucket="bos-backup",
         region="ap-southeast-2", endpoint=None, addressing="virtual", key="locks/lock-1",
         body="", token=True),
    dict(name="delete-object-dot-segments", kind="header", method="DELETE", bucket="bos-backup",
         region="us-east-1", endpoint=MINIO, addressing="path", key="a//b/./c/../d", body=""),
    dict(name="list-objects-v2-continuation", kind="header", method="GET", bucket="bos-backup",
         region="us-east-1", endpoint=None, addressing="virtual", key=None,
         query=[["list-type", "2"], ["prefix", "backups/snap shot/"], ["delimiter", "/"],
                ["max-keys", "1000"], ["continuation-token", CONTINUATION]],
         body=""),
    dict(name="list-objects-v2-minio-token", kind="header", method="GET", bucket="bos-backup",
         region="us-east-1", endpoint=MINIO, addressing="path", key=None,
         query=[["list-type", "2"], ["prefix", "repo/snapshots/"], ["start-after", "repo/snapshots/2024+01"]],
         body="", token=True),
    dict(name="create-multipart-upload", kind="header", method="POST", bucket="bos-backup",
         region="us-east-1", endpoint=None, addressing="virtual", key=UNICODE_KEY,
         query=[["uploads", None]], headers={"Content-Type": "application/octet-stream"}, body=""),
    dict(name="upload-part", kind="header", method="PUT", bucket="bos-backup",
         region="us-east-1", endpoint=MINIO, addressing="path", key="repo/packs/big pack",
         query=[["partNumber", "3"], ["uploadId", UPLOAD_ID]],
         headers={"Content-Length": "11"}, body="part three!"),
    dict(name="complete-multipart-upload", kind="header", method="POST", bucket="bos-backup",
         region="us-east-1", endpoint=MINIO, addressing="path", key="repo/packs/big pack",
         query=[["uploadId", UPLOAD_ID]], headers={"Content-Type": "application/xml"},
         body="<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
              "<ETag>\"abc\"</ETag></Part></CompleteMultipartUpload>"),
    dict(name="abort-multipart-upload-token", kind="header", method="DELETE", bucket="bos-backup",
         region="us-east-1", endpoint=None, addressing="virtual", key="repo/packs/big pack",
         query=[["uploadId", UPLOAD_ID]], body="", token=True),
    dict(name="virtual-host-custom-endpoint-port", kind="header", method="GET", bucket="bos-backup",
         region="garage", endpoint="https://s3.example.test:8443", addressing="virtual",
         key="x/y", body=""),
    dict(name="dotted-bucket-path-style", kind="header", method="GET", bucket="my.backup.bucket",
         region="eu-west-1", endpoint=None, addressing="path", key="k", body=""),
    dict(name="user-agent-not-signed", kind="header", method="GET", bucket="bos-backup",
         region="us-east-1", endpoint=None, addressing="virtual", key="k",
         headers={"User-Agent": "bosbackup/1.0", "X-Amz-Meta-Mixed-Case": "Value"}, body=""),
    dict(name="presign-get", kind="query", method="GET", bucket="bos-backup",
         region="us-east-1", endpoint=None, addressing="virtual", key=UNICODE_KEY, expires=3600),
    dict(name="presign-get-token", kind="query", method="GET", bucket="bos-backup",
         region="eu-central-1", endpoint=None, addressing="virtual", key="repo/config",
         expires=900, token=True),
    dict(name="presign-put-part", kind="query", method="PUT", bucket="bos-backup",
         region="us-east-1", endpoint=MINIO, addressing="path", key="repo/packs/big pack",
         query=[["partNumber", "7"], ["uploadId", UPLOAD_ID]], expires=604800),
    dict(name="presign-head-minio-token", kind="query", method="HEAD", bucket="bos-backup",
         region="us-east-1", endpoint=MINIO, addressing="path", key="odd/!'()*$&,;:@ #?.txt",
         expires=60, token=True),
    dict(name="presign-list", kind="query", method="GET", bucket="bos-backup",
         region="us-east-1", endpoint=None, addressing="virtual", key=None,
         query=[["list-type", "2"], ["prefix", "a b/"], ["continuation-token", CONTINUATION]],
         expires=300),
]


def build_url(case):
    """The request URL, built the way botocore's REST serializer builds it."""
    endpoint = case["endpoint"] or f"https://s3.{case['region']}.amazonaws.com"
    scheme, host = endpoint.split("://", 1)
    key = case.get("key")
    key_path = "" if key is None else "/" + percent_encode(key, safe="/~")
    if case["addressing"] == "virtual":
        url = f"{scheme}://{case['bucket']}.{host}{key_path or '/'}"
    else:
        url = f"{scheme}://{host}/{case['bucket']}{key_path}"
    query = case.get("query") or []
    if query:
        url += "?" + "&".join(
            percent_encode(name) if value is None else f"{percent_encode(name)}={percent_encode(value)}"
            for name, value in query
        )
    return url


class CapturingHeaderAuth(S3SigV4Auth):
    def canonical_request(self, request):
        self.captured = super().canonical_request(request)
        return self.captured


class CapturingQueryAuth(S3SigV4QueryAuth):
    def canonical_request(self, request):
        self.captured = super().canonical_request(request)
        return self.captured


def sign(case):
    token = SESSION_TOKEN if case.get("token") else None
    credentials = Credentials(ACCESS_KEY, SECRET_KEY, token)
    url = build_url(case)
    headers = dict(case.get("headers") or {})
    body = case.get("body")
    request = AWSRequest(method=case["method"], url=url, headers=headers,
                         data=body.encode("utf-8") if body else None)
    if case.get("unsigned"):
        # The real botocore switch for UNSIGNED-PAYLOAD on header-signed S3 requests.
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})

    result = dict(case)
    result.update(headers=headers, body=body, token=token, url=url)
    with mock.patch("botocore.auth.get_current_datetime", return_value=TIMESTAMP):
        if case["kind"] == "header":
            auth = CapturingHeaderAuth(credentials, "s3", case["region"])
            auth.add_auth(request)
            authorization = request.headers["Authorization"]
            result.update(
                authorization=authorization,
                signed_headers=authorization.split("SignedHeaders=")[1].split(",")[0],
                signature=authorization.split("Signature=")[1],
                x_amz_date=request.headers["X-Amz-Date"],
                x_amz_content_sha256=request.headers["X-Amz-Content-SHA256"],
                x_amz_security_token=request.headers.get("X-Amz-Security-Token"),
            )
        else:
            auth = CapturingQueryAuth(credentials, "s3", case["region"], expires=case["expires"])
            auth.add_auth(request)
            result.update(presigned_url=request.url)
    result["canonical_request"] = auth.captured
    return result


def main():
    output = {
        "botocore_version": botocore.__version__,
        "timestamp": TIMESTAMP.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "cases": [sign(case) for case in CASES],
    }
    json.dump(output, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
