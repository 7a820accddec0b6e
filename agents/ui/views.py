"""Control UI pages for agents and their routing bindings (server-side forms that call
``agents/services/agents.py``, whose field-keyed errors land next to the fields)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from agents import selectors
from agents.models import Agent, Binding
from agents.services import agents as agent_service
from agents.ui.forms import AgentForm, BindingForm
from gateway.protocol.errors import GatewayError
from gateway.ui.access import ui_login_required


# agents ------------------------------------------------------------------------------------
@ui_login_required
def agent_list(request: HttpRequest) -> HttpResponse:
    agents = selectors.agents_with_counts()
    return render(request, "ui/agents.html", {"nav": "agents", "agents": agents})


@ui_login_required
@require_http_methods(["GET", "POST"])
def agent_create(request: HttpRequest) -> HttpResponse:
    form = AgentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            agent = agent_service.agent_create(id=form.cleaned_data["id"], **form.service_fields())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Agent {agent.id!r} created.")
            return redirect("ui:agent-edit", agent_id=agent.id)
    return render(
        request,
        "ui/agent_form.html",
        {"nav": "agents", "form": form, "agent": None},
        status=400 if form.errors else 200,
    )


@ui_login_required
@require_http_methods(["GET", "POST"])
def agent_edit(request: HttpRequest, agent_id: str) -> HttpResponse:
    agent = get_object_or_404(Agent, pk=agent_id)
    form = AgentForm(request.POST or None, agent=agent)
    if request.method == "POST" and form.is_valid():
        try:
            agent_service.agent_update(agent=agent, **form.service_fields())
        except ValidationError as error:
            form.add_service_errors(error)
            agent.refresh_from_db()
        else:
            messages.success(request, f"Agent {agent.id!r} saved.")
            return redirect("ui:agent-edit", agent_id=agent.id)
    return _agent_page(request, agent, form=form, binding_form=BindingForm())


def _agent_page(
    request: HttpRequest, agent: Agent, *, form: AgentForm, binding_form: BindingForm
) -> HttpResponse:
    context = {
        "nav": "agents",
        "agent": agent,
        "form": form,
        "binding_form": binding_form,
        "bindings": agent.bindings.all(),
        "session_count": agent.sessions.count(),
    }
    status = 400 if form.errors or binding_form.errors else 200
    return render(request, "ui/agent_form.html", context, status=status)


@ui_login_required
@require_POST
def agent_delete(request: HttpRequest, agent_id: str) -> HttpResponse:
    """Delete by the service's rules; its sessions only when the form's box was ticked."""
    agent = get_object_or_404(Agent, pk=agent_id)
    force = request.POST.get("force") == "true"
    try:
        agent_service.agent_delete(agent=agent, force=force)
    except agent_service.AgentHasSessions as refused:
        messages.error(
            request,
            f"Not deleted: {refused.message}. Tick “Also delete its sessions” to delete them too.",
        )
        return redirect("ui:agent-edit", agent_id=agent_id)
    except (ValidationError, GatewayError) as refused:
        text = refused.message if isinstance(refused, GatewayError) else refused.messages[0]
        messages.error(request, f"Not deleted: {text}.")
        return redirect("ui:agent-edit", agent_id=agent_id)
    messages.success(request, f"Agent {agent_id!r} deleted with its bindings and sessions.")
    return redirect("ui:agents")


@ui_login_required
@require_POST
def binding_create(request: HttpRequest, agent_id: str) -> HttpResponse:
    agent = get_object_or_404(Agent, pk=agent_id)
    form = BindingForm(request.POST)
    if form.is_valid():
        try:
            agent_service.binding_create(agent=agent, **form.service_fields())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Binding added.")
            return redirect("ui:agent-edit", agent_id=agent.id)
    return _agent_page(request, agent, form=AgentForm(agent=agent), binding_form=form)


@ui_login_required
@require_POST
def binding_delete(request: HttpRequest, agent_id: str, binding_id: int) -> HttpResponse:
    binding = get_object_or_404(Binding, pk=binding_id, agent_id=agent_id)
    agent_service.binding_delete(binding=binding)
    messages.success(request, "Binding removed.")
    return redirect("ui:agent-edit", agent_id=agent_id)
