import sys, requests

with open("/run/secrets/github_token") as f:
    token = f.read().strip()

resp = requests.get(
    f"https://api.github.com/repos/{sys.argv[1]}/issues",
    headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
    timeout=30,
)
resp.raise_for_status()
for issue in resp.json():
    print(issue["number"], issue["title"])
