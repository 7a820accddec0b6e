"""Control UI forms. They only parse and show errors: writes go through the agent services
(``agents/services/agents.py``), whose field-keyed ValidationErrors land next to the fields."""

from __future__ import annotations

from django import forms

from agents.models import AGENT_ID, Agent, PeerKind
from agents.runtime.toolnames import BUILTIN_TOOL_NAMES
from gateway.ui.forms import ServiceForm


class AgentForm(ServiceForm):
    """Create or edit an agent (``id`` only on create)."""

    id = forms.CharField(
        label="Agent id",
        max_length=64,
        validators=[AGENT_ID],
        help_text="lowercase letters, digits, '-' and '_' (cannot be changed later)",
    )
    name = forms.CharField(max_length=200, required=False)
    model = forms.CharField(
        max_length=200,
        required=False,
        help_text='"provider:model", e.g. openai:gpt-4o or wingman:echo; empty = gateway default',
    )
    system_prompt = forms.CharField(
        label="System prompt", required=False, widget=forms.Textarea(attrs={"rows": 5})
    )
    tools = forms.MultipleChoiceField(
        choices=[(name, name) for name in sorted(BUILTIN_TOOL_NAMES)],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="file tools work inside the session's working folder",
    )
    workspace = forms.CharField(max_length=1000, required=False)
    agent_dir = forms.CharField(label="Agent dir", max_length=1000, required=False)
    is_default = forms.BooleanField(label="Default agent", required=False)
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, agent: Agent | None = None, **kwargs) -> None:
        self.agent = agent
        if agent is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "id": agent.id,
                "name": agent.name,
                "model": agent.model,
                "system_prompt": agent.system_prompt,
                "tools": list(agent.tools or []),
                "workspace": agent.workspace,
                "agent_dir": agent.agent_dir,
                "is_default": agent.is_default,
                "enabled": agent.enabled,
            }
        super().__init__(*args, **kwargs)
        if agent is not None:
            # the primary key never changes; the value shown is the agent's, not the POST's
            self.fields["id"].disabled = True


class BindingForm(ServiceForm):
    """A routing binding for one agent (most specific match wins)."""

    channel = forms.CharField(max_length=100, help_text="e.g. webui, cli, discord")
    account_id = forms.CharField(label="Account id", max_length=200, required=False)
    guild_id = forms.CharField(label="Guild id", max_length=200, required=False)
    team_id = forms.CharField(label="Team id", max_length=200, required=False)
    peer_kind = forms.ChoiceField(
        label="Peer kind", choices=[("", "any"), *PeerKind.choices], required=False
    )
    peer_id = forms.CharField(label="Peer id", max_length=200, required=False)
    order = forms.IntegerField(min_value=0, initial=0, required=False)

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        if data.get("order") is None:
            data["order"] = 0
        return data
