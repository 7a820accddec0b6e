"""The operator's view of rooms: their member agents (inline, in turn order) and history.

Rooms are created and changed through the room service (its rules: a unique name, the
strategy, ``maxRooms``), deleted through it, and the actions broadcast and delete with
the services. History entries are written only by broadcasts: read-only here.
"""

from __future__ import annotations

from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from rooms import selectors
from rooms.models import Room, RoomAgent, RoomMessage
from rooms.services import broadcast as broadcast_service
from rooms.services import history, limits
from rooms.services import rooms as room_service
from rooms.services.broadcast import Sender

ROOM_FIELDS = ("name", "description", "strategy", "metadata")


async def _broadcast(**kwargs) -> dict:
    """A broadcast whose history entry is written before the page shows the history."""
    answer = await broadcast_service.room_broadcast(**kwargs)
    await history.history_flush()
    return answer


def control_ui_url(room_id: str) -> str:
    """The Control UI's rooms page on this room."""
    return f"{reverse('ui:rooms')}?{urlencode({'room': room_id})}"


class RoomAgentFormSet(forms.BaseInlineFormSet):
    """The member agents: at most ``maxMembersPerRoom``."""

    def clean(self) -> None:
        super().clean()
        kept = [
            f
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("agent")
        ]
        limit = limits.max_members()
        if len(kept) > limit:
            raise ValidationError(f"a room has at most {limit} members")


class RoomAgentInline(admin.TabularInline):
    model = RoomAgent
    formset = RoomAgentFormSet
    extra = 1
    fields = ("agent", "position")
    ordering = ("position", "id")


class RoomMessageInline(admin.TabularInline):
    """History: written by broadcasts only."""

    model = RoomMessage
    extra = 0
    can_delete = False
    fields = ("created_at", "sender_kind", "sender_id", "content", "run_id", "status")
    readonly_fields = fields
    ordering = ("-id",)
    max_num = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class RoomForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = ("id", *ROOM_FIELDS)
        help_texts = {"id": "a slug of your choice, or the random hex id offered"}

    def clean(self):
        cleaned = super().clean()
        limit = limits.max_rooms()
        if self.instance._state.adding and Room.objects.count() >= limit:
            raise ValidationError(f"at most {limit} rooms (WINGMAN_ROOMS_MAX)")
        return cleaned


class BroadcastForm(forms.Form):
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=200_000)
    strategy = forms.ChoiceField(
        choices=[("", "the room's"), ("parallel", "parallel"), ("sequential", "sequential")],
        required=False,
    )


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    form = RoomForm
    list_display = (
        "id",
        "name",
        "strategy",
        "agent_count",
        "message_count",
        "created_by",
        "created_at",
        "open_in_control_ui",
    )
    list_filter = ("strategy",)
    search_fields = ("id", "name", "description")
    readonly_fields = ("created_by", "created_at", "updated_at", "open_in_control_ui")
    inlines = [RoomAgentInline, RoomMessageInline]
    # Django's "delete selected" (its confirmation page) ends in delete_queryset: the service
    actions = ["broadcast"]

    def get_queryset(self, request):
        return selectors.rooms_with_counts()

    def get_readonly_fields(self, request, obj=None):
        # the id is chosen once (room sessions are named after it)
        return ("id", *self.readonly_fields) if obj is not None else self.readonly_fields

    def save_model(self, request, obj: Room, form, change: bool) -> None:
        """Through the room service (its rules); the inline members are saved after."""
        fields = {name: form.cleaned_data[name] for name in ROOM_FIELDS}
        if change:
            room = room_service.room_update(room_id=obj.pk, **fields)
        else:
            room = room_service.room_create(
                room_id=form.cleaned_data.get("id") or None,
                created_by=f"user:{request.user.get_username()}",
                **fields,
            )
        obj.__dict__.update({k: v for k, v in room.__dict__.items() if not k.startswith("_")})
        obj._state.adding = False

    def delete_model(self, request, obj: Room) -> None:
        room_service.room_delete(room_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for room_id in list(queryset.values_list("pk", flat=True)):
            room_service.room_delete(room_id=room_id)

    @admin.display(description="agents", ordering="agent_count")
    def agent_count(self, obj: Room) -> int:
        return obj.agent_count

    @admin.display(description="history", ordering="message_count")
    def message_count(self, obj: Room) -> int:
        return obj.message_count

    @admin.display(description="Control UI")
    def open_in_control_ui(self, obj: Room) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}">open room</a>', control_ui_url(obj.pk))

    @admin.action(description="Broadcast a message to the selected rooms")
    def broadcast(self, request, queryset):
        """An intermediate page asks for the message; the broadcast service runs the agents."""
        form = BroadcastForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            name = f"user:{request.user.get_username()}"
            sender = Sender(kind="user", id=name, name=name)
            runs = 0
            for room in queryset:
                answer = async_to_sync(_broadcast)(
                    room_id=room.pk,
                    message=form.cleaned_data["message"],
                    strategy=form.cleaned_data["strategy"] or None,
                    sender=sender,
                )
                runs += len(answer["runIds"]) + len(answer["pending"])
            self.message_user(
                request, f"Broadcast to {queryset.count()} room(s): {runs} agent run(s)."
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Broadcast to rooms",
            "form": form,
            "rooms": queryset,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/rooms/room/broadcast.html", context)
