"""Print the N-th ```bash block of README.md (1-based): CI runs exactly what the README says."""

import re
import sys
from pathlib import Path

blocks = re.findall(r"```bash\n(.*?)```", Path("README.md").read_text(), flags=re.S)
print(blocks[int(sys.argv[1]) - 1].strip())
