"""Values that Terraform and the Lambda code must agree on, read from both sides: a test fails when one side changes.

Terraform's side is read from the .tf files with python-hcl2 (no Terraform run needed); the Python side is the
constant the Lambda code uses.
"""

from __future__ import annotations

import re

from ec2_action import messages
from test_terraform_static import REPO_ROOT, parsed


def terraform_local(module: str, name: str) -> object:
    """A `locals` value of a module, as python-hcl2 reads it (an expression stays a "${...}" string)."""
    for path in sorted((REPO_ROOT / "modules" / module).glob("*.tf")):
        for block in parsed(path).get("locals", []):
            if name in block:
                return block[name]
    raise KeyError(f"modules/{module} has no local {name}")


def test_console_hosts_match_the_action_types_links() -> None:
    """modules/action_type links the action's pages to the console of the partition; the build log link too."""
    expression = str(terraform_local("action_type", "console_host"))
    hosts = dict(re.findall(r'"([\w-]+)"\s*=\s*"([\w.-]+)"', expression))
    default = re.search(r',\s*"([\w.-]+)"\)\}$', expression)
    assert hosts == messages.CONSOLE_HOSTS
    assert default and default[1] == messages.DEFAULT_CONSOLE_HOST
