"""API keys kept in AWS Systems Manager Parameter Store, read once per Lambda container."""

from __future__ import annotations


def keys_from_ssm(
    parameter: str, *, region: str | None, endpoint_url: str | None
) -> tuple[str, ...]:
    """The comma-separated keys in an SSM parameter (SecureString or String)."""
    import boto3

    ssm = boto3.client("ssm", region_name=region, endpoint_url=endpoint_url)
    value = ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    return tuple(key.strip() for key in str(value).split(",") if key.strip())
