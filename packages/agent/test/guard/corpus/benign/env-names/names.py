import os
for name in sorted(os.environ.keys()):
    print(name)
