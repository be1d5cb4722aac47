#!/usr/bin/env python3
"""Seeds the demo's local servers (run with the project virtualenv's python).

  demo_seed.py vault ADDR TOKEN FILE.jsonl   write each {"path","value"} as a KV v2 secret in secret/
  demo_seed.py kms-key ENDPOINT ALIAS        create a symmetric KMS key in moto, print its id
  demo_seed.py ssm ENDPOINT FILE.json        put each {"name": [type, value]} into moto's SSM
"""
import json
import sys
import urllib.parse
import urllib.request


def vault(addr, token, path):
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            url = f"{addr}/v1/secret/data/{urllib.parse.quote(rec['path'], safe='/')}"
            body = json.dumps({"data": rec["value"]}).encode()
            req = urllib.request.Request(url, data=body, method="PUT",
                                         headers={"X-Vault-Token": token,
                                                  "Content-Type": "application/json"})
            urllib.request.urlopen(req).read()
            n += 1
    print(f"seeded {n} secrets into {addr}/v1/secret/", file=sys.stderr)


def kms_key(endpoint, alias):
    import boto3
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    key = kms.create_key(Description="secretport demo export key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    print(key)


def ssm(endpoint, path):
    import boto3
    client = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    with open(path, encoding="utf-8") as f:
        params = json.load(f)
    for name, (kind, value) in params.items():
        client.put_parameter(Name=name, Type=kind, Value=value, Overwrite=True)
    print(f"seeded {len(params)} SSM parameters", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1] == "vault":
        vault(*sys.argv[2:5])
    elif sys.argv[1] == "kms-key":
        kms_key(*sys.argv[2:4])
    elif sys.argv[1] == "ssm":
        ssm(*sys.argv[2:4])
    else:
        sys.exit(__doc__)
