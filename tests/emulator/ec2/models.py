"""EC2 in the emulator: the fidelity fixes the module's Terraform needs from moto."""

from __future__ import annotations

from typing import Any

from moto.ec2.models import EC2Backend

# Inside LaunchTemplateData, TagSpecifications name what instances launched from the template get tagged with;
# "launch-template" is not one of them. It only ever names the template's own tags, given beside the data.
_NOT_A_LAUNCH_RESOURCE = "launch-template"


def _without_own_tags(template_data: dict[str, Any]) -> dict[str, Any]:
    specs = template_data.get("TagSpecifications")
    if not specs:
        return template_data
    kept = [spec for spec in specs if spec.get("ResourceType") != _NOT_A_LAUNCH_RESOURCE]
    return (
        {**template_data, "TagSpecifications": kept}
        if kept
        else {key: value for key, value in template_data.items() if key != "TagSpecifications"}
    )


def create_launch_template(original: Any) -> Any:
    """moto copies a launch template's own tags into its data, so every Terraform plan shows a change: undo that."""

    def create(
        self: EC2Backend, name: str, description: str, template_data: dict[str, Any], tag_spec: dict[str, Any]
    ) -> Any:
        return original(self, name, description, _without_own_tags(template_data), tag_spec)

    return create
