"""Install the collections Molecule's podman driver needs into .venv/collections.

Ansible Galaxy may be unreachable, PyPI is not: the `ansible` package on PyPI
carries every community collection, so the pinned wheel (checked against its
sha256) is downloaded once and only the collections listed here are taken out.

    python tools/vendor_collections.py DEST     DEST: an ANSIBLE_COLLECTIONS_PATH entry
"""

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ANSIBLE_WHEEL = "ansible==12.3.0"
ANSIBLE_WHEEL_SHA256 = "cd156f82fa87f7a899212b0efa9f7ca3a24d609212de9f78428a572eb01e5414"
COLLECTIONS = ("containers/podman",)


def missing(dest):
    return [name for name in COLLECTIONS if not (dest / "ansible_collections" / name / "MANIFEST.json").is_file()]


def download_wheel(folder):
    requirement = folder / "requirements.txt"
    requirement.write_text("%s --hash=sha256:%s\n" % (ANSIBLE_WHEEL, ANSIBLE_WHEEL_SHA256))
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--only-binary", ":all:", "--require-hashes", "-r", str(requirement), "-d", str(folder)], check=True)
    return next(folder.glob("ansible-*.whl"))


def extract(wheel, dest, names):
    with zipfile.ZipFile(wheel) as archive:
        for name in names:
            prefix = "ansible_collections/%s/" % name
            target = dest / "ansible_collections" / name
            staging = target.with_name(target.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            for member in archive.namelist():
                if member.startswith(prefix) and not member.endswith("/"):
                    relative = Path(member[len(prefix):])
                    if relative.is_absolute() or ".." in relative.parts:
                        raise SystemExit("vendor_collections.py: unsafe path %s in %s" % (member, wheel.name))
                    out = staging / relative
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(archive.read(member))
            if not (staging / "MANIFEST.json").is_file():
                raise SystemExit("vendor_collections.py: %s has no collection %s" % (wheel.name, name))
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
            print("installed %s from %s into %s" % (name.replace("/", "."), wheel.name, dest))


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__.strip().splitlines()[-1].strip())
    dest = Path(argv[1]).resolve()
    names = missing(dest)
    if not names:
        return
    with tempfile.TemporaryDirectory(prefix="slogate-vendor-") as folder:
        try:
            wheel = download_wheel(Path(folder))
        except subprocess.CalledProcessError:
            raise SystemExit("vendor_collections.py: could not download %s from PyPI (see pip's message above)"
                             % ANSIBLE_WHEEL) from None
        extract(wheel, dest, names)


if __name__ == "__main__":
    main(sys.argv)
