import os, subprocess
env = {**os.environ, "APP_ENV": "test"}
subprocess.run(["pytest", "-q"], env=env, check=True)
