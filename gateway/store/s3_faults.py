"""What an S3 client's exceptions mean for the gateway, in one line each: while it runs (the
message of a ClaimStoreError) and at start-up (a ConfigurationError naming the setting at fault).
"""

from __future__ import annotations

from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

from gateway.errors import ConfigurationError

NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
WRONG_REGION = frozenset({"AuthorizationHeaderMalformed", "PermanentRedirect", "301"})
REFUSED = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
)


def code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status_of(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def describe(exc: Exception, doing: str, bucket: str, endpoint: str) -> str:
    """The message of the ClaimStoreError raised for ``exc`` while ``doing`` something."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return f"object store: no credentials to sign with while {doing}"
    if not isinstance(exc, ClientError):
        return f"object store at {endpoint} unreachable while {doing}: {_one_line(exc)}"
    code, status = code_of(exc), _status_of(exc)
    if code == "NoSuchBucket":
        return f"object store: bucket {bucket!r} does not exist at {endpoint} ({doing})"
    if code in REFUSED or status == 403:
        return f"object store at {endpoint} refused the credentials ({code}) while {doing}"
    if status >= 500:
        return f"object store at {endpoint} failed ({status} {code}) while {doing}"
    return f"object store at {endpoint} refused {doing}: {status} {code}"


def startup_error(exc: Exception, bucket: str, endpoint: str) -> ConfigurationError:
    """What a failed first listing of the bucket says about the settings."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ConfigurationError(
            "GATEWAY_S3_ACCESS_KEY_ID: no credentials for the object store "
            "(set it and GATEWAY_S3_SECRET_ACCESS_KEY)"
        )
    if not isinstance(exc, ClientError):
        return ConfigurationError(
            f"GATEWAY_S3_ENDPOINT_URL: cannot reach the object store at {endpoint}: "
            f"{_one_line(exc)}"
        )
    code, status = code_of(exc), _status_of(exc)
    where = f"the object store at {endpoint}"
    if code == "NoSuchBucket" or status == 404:
        message = f"GATEWAY_OBJECT_STORE_URL: bucket {bucket!r} does not exist at {endpoint}"
    elif code == "InvalidAccessKeyId":
        message = f"GATEWAY_S3_ACCESS_KEY_ID: {where} does not know this access key"
    elif code == "SignatureDoesNotMatch":
        message = f"GATEWAY_S3_SECRET_ACCESS_KEY: {where} refused the signature (wrong secret)"
    elif code in WRONG_REGION:
        message = f"GATEWAY_S3_REGION: {where} says bucket {bucket!r} is in another region"
    elif code in REFUSED or status == 403:
        message = f"GATEWAY_S3_ACCESS_KEY_ID: {where} refused access to bucket {bucket!r} ({code})"
    elif status >= 500:
        message = f"GATEWAY_S3_ENDPOINT_URL: {where} failed ({status} {code})"
    else:
        message = f"GATEWAY_OBJECT_STORE_URL: {where} refused listing {bucket!r} ({status} {code})"
    return ConfigurationError(message)
