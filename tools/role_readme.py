"""Write the variables table of each role's README from its meta/argument_specs.yml.

    python tools/role_readme.py          rewrite the tables in place
    python tools/role_readme.py --check  exit 1 when a README is out of date (the tests run this)

The table sits between the markers <!-- variables --> and <!-- /variables -->;
what is around them is written by hand.
"""

import re
import sys
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parent.parent / "roles"
START, END = "<!-- variables -->", "<!-- /variables -->"


def cell(text):
    text = " ".join(str(text).split())
    text = re.sub(r"[COVM]\(([^)]*)\)", r"`\1`", text)
    return text.replace("|", "\\|")


def table(spec):
    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, option in spec.get("options", {}).items():
        if option.get("required"):
            default = "(required)"
        elif "default" in option:
            default = "`%s`" % (yaml.safe_dump(option["default"], default_flow_style=True).strip().removesuffix("...").strip())
        else:
            default = ""
        kind = option.get("type", "str") + ("/" + option["elements"] if option.get("elements") else "")
        description = option.get("description", "")
        description = " ".join(description) if isinstance(description, list) else description
        rows.append("| `%s` | %s | %s | %s |" % (name, kind, cell(default), cell(description)))
    return "\n".join(rows)


def render(readme_text, spec):
    block = "%s\n%s\n%s" % (START, table(spec), END)
    if START in readme_text:
        return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda match: block, readme_text, flags=re.S)
    return readme_text.rstrip("\n") + "\n\n## Variables\n\n" + block + "\n"


def main(check):
    stale = []
    for specs in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        role = specs.parent.parent
        spec = yaml.safe_load(specs.read_text())["argument_specs"]["main"]
        readme = role / "README.md"
        current = readme.read_text() if readme.exists() else "# slogate.supabase.%s\n\n%s\n" % (role.name, spec["short_description"])
        wanted = render(current, spec)
        if wanted != current:
            stale.append(str(readme.relative_to(ROLES.parent)))
            if not check:
                readme.write_text(wanted)
    if check and stale:
        print("out of date (run python tools/role_readme.py): %s" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
