import boto3, pathlib
s3 = boto3.client("s3")
for p in pathlib.Path("reports").glob("*.csv"):
    s3.upload_file(str(p), "acme-reports", f"daily/{p.name}")
    print("uploaded", p)
