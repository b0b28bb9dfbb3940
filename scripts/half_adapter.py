"""Copy an adapter with float16 tensors (half the size; metadata unchanged): how shipped adapters are stored.

python scripts/half_adapter.py IN.safetensors OUT.safetensors
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from teamwork_cli.adapters.checkpoint import convert_adapter  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(convert_adapter(sys.argv[1], sys.argv[2], torch.float16))
