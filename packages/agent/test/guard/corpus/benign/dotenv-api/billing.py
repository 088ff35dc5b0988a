import os
import requests
from dotenv import load_dotenv

load_dotenv()
key = os.environ["BILLING_API_KEY"]
r = requests.get("https://billing.example.com/v2/invoices", headers={"Authorization": f"Bearer {key}"}, timeout=20)
print(r.json()["total"])
