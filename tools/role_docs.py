"""Write docs/roles/<role>.md for every role and the lists of docs/index.md.

    python tools/role_docs.py          rewrite them
    python tools/role_docs.py --check  exit 1 when one is out of date (the unit tests run this)

A role's page is made from what the role already holds, so it cannot drift
from it: the argument spec (short description, description, every variable
with its type, default, choices and sub-options) and the hand-written part of
the role's README (everything but its generated variables table). The index
lists the modules (their short_description as ansible-doc reports it), the
roles and the playbooks between the markers <!-- generated --> and
<!-- /generated -->; what is around the markers is written by hand.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ROLES = ROOT / "roles"
PLAYBOOKS = ROOT / "playbooks"
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
COLLECTION = "%s.%s" % (GALAXY["namespace"], GALAXY["name"])
START, END = "<!-- generated -->", "<!-- /generated -->"
README_TABLE = re.compile(r"(## Variables\s*\n\s*)?<!-- variables -->.*?<!-- /variables -->\n?", re.S)

INDEX_FRAME = """# %s

%s

Each module's full documentation: `ansible-doc %s.<module>`. Each role's page
below is written from its argument spec and README; `ansible-doc -t role
%s.<role>` shows the same variables. What changed in each release:
[CHANGELOG.rst](../CHANGELOG.rst).

%s
%s
""" % (COLLECTION, " ".join(GALAXY["description"].split()), COLLECTION, COLLECTION, START, END)


def role_names():
    return sorted(path.parent.parent.name for path in ROLES.glob("*/meta/argument_specs.yml"))


def markup(text, roles, page_dir):
    """Ansible doc markup as Markdown; a role named with M() links to its page."""
    def module_or_role(match):
        name = match.group(1)
        short = name[len(COLLECTION) + 1:] if name.startswith(COLLECTION + ".") else None
        if short in roles:
            return "[`%s`](%s)" % (name, os.path.relpath(DOCS / "roles" / ("%s.md" % short), page_dir))
        return "`%s`" % name

    text = re.sub(r"M\(([^)]*)\)", module_or_role, str(text))
    text = re.sub(r"L\(([^,)]*),\s*([^)]*)\)", r"[\1](\2)", text)
    text = re.sub(r"U\(([^)]*)\)", r"<\1>", text)
    text = re.sub(r"(?:RV|[COVE])\(([^)]*)\)", r"`\1`", text)
    text = re.sub(r"I\(([^)]*)\)", r"*\1*", text)
    return re.sub(r"B\(([^)]*)\)", r"**\1**", text)


def paragraphs(value):
    return value if isinstance(value, list) else [value] if value else []


def cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def flow(value):
    return "`%s`" % yaml.safe_dump(value, default_flow_style=True, width=10000).strip().removesuffix("...").strip()


def option_rows(options, roles, prefix=""):
    rows = []
    for name, option in options.items():
        kind = option.get("type", "str") + ("/" + option["elements"] if option.get("elements") else "")
        if option.get("required"):
            default = "(required)"
        else:
            default = flow(option["default"]) if "default" in option else ""
        choices = ", ".join(flow(choice) for choice in option.get("choices", []))
        meaning = " ".join(markup(part, roles, DOCS / "roles") for part in paragraphs(option.get("description")))
        rows.append("| `%s%s` | %s | %s | %s | %s |" % (prefix, name, kind, cell(default), cell(choices), cell(meaning)))
        if option.get("options"):
            child = "%s%s%s." % (prefix, name, "[]" if option.get("type") == "list" else "")
            rows.extend(option_rows(option["options"], roles, child))
    return rows


def used_by(role, roles):
    """Playbooks and other roles that run this role, as Markdown list items."""
    pattern = re.compile(r"\b%s\.%s\b" % (re.escape(COLLECTION), re.escape(role)))
    items = []
    for playbook in sorted(PLAYBOOKS.glob("*.yml")):
        if pattern.search(playbook.read_text()):
            items.append("- the playbook `%s.%s` ([playbooks/%s](../../playbooks/%s))"
                         % (COLLECTION, playbook.stem, playbook.name, playbook.name))
    for other in roles:
        files = list((ROLES / other / "tasks").glob("*.yml")) + list((ROLES / other / "meta").glob("main.yml"))
        if other != role and any(pattern.search(path.read_text()) for path in files):
            items.append("- the role [`%s.%s`](%s.md)" % (COLLECTION, other, other))
    return items


def readme_parts(role, spec):
    """The README's hand-written text before and after its generated variables table (and that table's heading),
    without the title and the short description the page already gives."""
    text = (ROLES / role / "README.md").read_text()
    match = README_TABLE.search(text)
    before, after = (text[:match.start()], text[match.end():]) if match else (text, "")
    lines = before.splitlines()
    if lines and lines[0].strip() == "# %s.%s" % (COLLECTION, role):
        lines = lines[1:]
    before = "\n".join(lines).strip()
    if before.startswith(spec["short_description"].strip()):
        before = before[len(spec["short_description"].strip()):].strip()
    return before, after.strip()


def variables_section(specs, roles):
    out = []
    for entry, spec in sorted(specs.items(), key=lambda item: item[0] != "main"):
        out += ["## Variables" if entry == "main" else "## Variables of the entry point `%s`" % entry, ""]
        if entry != "main":
            out += [markup(spec.get("short_description", ""), roles, DOCS / "roles"), ""]
        if spec.get("options"):
            out += ["| variable | type | default | choices | meaning |", "|---|---|---|---|---|"]
            out += option_rows(spec["options"], roles)
        else:
            out.append("None.")
        out.append("")
    return out


def role_page(role, roles):
    specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    main = specs["main"]
    out = ["<!-- Written by tools/role_docs.py from roles/%s/README.md and roles/%s/meta/argument_specs.yml;"
           " edit those and run python tools/role_docs.py. -->" % (role, role), "",
           "# %s.%s" % (COLLECTION, role), "", markup(main["short_description"], roles, DOCS / "roles"), ""]
    for part in paragraphs(main.get("description")):
        out += ["- " + " ".join(markup(part, roles, DOCS / "roles").split())]
    if main.get("description"):
        out.append("")
    before, after = readme_parts(role, main)
    if before:
        out += [before, ""]
    out += ["## Used by", ""] + (used_by(role, roles) or
                                 ["No playbook or role of the collection runs it; use it in a play of your own."])
    out.append("")
    out += variables_section(specs, roles)
    out += ["`ansible-doc -t role %s.%s` shows the same variables." % (COLLECTION, role), ""]
    if after:
        out += [after, ""]
    return "\n".join(out)


def module_descriptions():
    """{module: short_description} from ansible-doc, reading this tree and nothing else."""
    with tempfile.TemporaryDirectory(prefix="slogate-docs-") as tmp:
        link = Path(tmp) / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
        link.parent.mkdir(parents=True)
        link.symlink_to(ROOT, target_is_directory=True)
        env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
        env.update(ANSIBLE_COLLECTIONS_PATH=tmp, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False", ANSIBLE_NOCOLOR="1")
        ansible_doc = Path(sys.executable).parent / "ansible-doc"
        run = subprocess.run([str(ansible_doc) if ansible_doc.exists() else "ansible-doc", "-l", COLLECTION, "--json"],
                             capture_output=True, text=True, env=env, cwd=tmp, check=False)
        if run.returncode:
            raise SystemExit("ansible-doc -l %s failed: %s" % (COLLECTION, run.stderr.strip()[-2000:]))
    return {name[len(COLLECTION) + 1:]: text for name, text in json.loads(run.stdout).items()}


def playbook_rows():
    rows = []
    for playbook in sorted(PLAYBOOKS.glob("*.yml")):
        plays = yaml.safe_load(playbook.read_text()) or []
        text = playbook.read_text()
        roles = []
        for name in re.findall(r"\b%s\.(\w+)\b" % re.escape(COLLECTION), text):
            if name in role_names() and name not in roles:
                roles.append(name)
        what = cell(plays[0].get("name", "")) if plays else ""
        links = ", ".join("[%s](roles/%s.md)" % (role, role) for role in roles)
        rows.append("| `%s.%s` | %s | %s |" % (COLLECTION, playbook.stem, what, links))
    return rows


def index_block(roles):
    out = [START, "## Modules", "", "| module | what it does |", "|---|---|"]
    out += ["| `%s.%s` | %s |" % (COLLECTION, name, cell(text)) for name, text in sorted(module_descriptions().items())]
    out += ["", "## Roles", "", "| role | what it does |", "|---|---|"]
    for role in roles:
        spec = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
        out.append("| [`%s.%s`](roles/%s.md) | %s |" % (COLLECTION, role, role, cell(spec["short_description"])))
    out += ["", "## Playbooks", "", "Run them as `ansible-playbook %s.<playbook>`." % COLLECTION, "",
            "| playbook | what it does | roles |", "|---|---|---|"] + playbook_rows()
    out.append(END)
    return "\n".join(out)


def wanted_files():
    roles = role_names()
    files = {DOCS / "roles" / ("%s.md" % role): role_page(role, roles) for role in roles}
    index = DOCS / "index.md"
    current = index.read_text() if index.exists() else INDEX_FRAME
    if START not in current:
        current = current.rstrip("\n") + "\n\n%s\n%s\n" % (START, END)
    files[index] = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda match: index_block(roles), current, flags=re.S)
    return files


def main(check):
    files = wanted_files()
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    pages = set(files)
    extra = sorted(path for path in (DOCS / "roles").glob("*.md") if path not in pages) if (DOCS / "roles").is_dir() else []
    if check:
        if stale or extra:
            print("out of date (run python tools/role_docs.py): %s"
                  % ", ".join(str(path.relative_to(ROOT)) for path in stale + extra))
            return 1
        return 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
    for path in extra:   # the page of a role that is gone
        path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
