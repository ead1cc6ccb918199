"""The Django admin: sessions with live counts, their tokens and revisions, how to connect; integration keys.

Every change that clients must hear of (ending a session, revoking a token, issuing one)
goes through services.py, so it reaches live sockets exactly as the API's does.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from . import links
from .login_limits import LoginAttempts, request_address
from .models import CollabSession, IntegrationKey, Revision, SessionToken
from .presence import presence
from .readable_times import clock_time, distance, readable_time
from .services import (
    default_token_expiry,
    do_create_integration_key,
    do_create_session,
    do_end_session,
    do_issue_token,
    do_revoke_integration_key,
    do_revoke_token,
    publish_code_expiry,
)

CONNECT_TEMPLATE = "admin/sessions_app/collabsession/connect.html"
KEY_CREATED_TEMPLATE = "admin/sessions_app/integrationkey/created.html"
PREVIEW_STYLE = "width:44rem;max-width:100%;height:36em;border:1px solid var(--hairline-color)"
# The viewer's own page and document markup, so the preview reads as the viewer shows it.
PREVIEW_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="{}"></head>'
    '<body><main class="page"><article id="document" class="document">{}</article></main></body></html>'
)


def sandboxed_preview(html, title):
    """Stored HTML shown in an iframe with every sandbox restriction: no scripts, no same origin."""
    if not html:
        return "(empty)"
    page = format_html(PREVIEW_PAGE, static("viewer/viewer.css"), mark_safe(html))  # noqa: S308
    return format_html(
        # escape() escapes even safe strings: the whole page goes into the attribute as text.
        '<iframe sandbox="" srcdoc="{}" title="{}" style="{}"></iframe>',
        escape(page),
        title,
        PREVIEW_STYLE,
    )


def shown_time(field, description):
    """An admin column or field showing a model's time as "31 Dec 2026, 05:34 UTC (in 4 weeks)"."""

    @admin.display(description=description, ordering=field)
    def show(model_admin, obj):
        return readable_time(getattr(obj, field))

    return show


def listed_time(field, description):
    """A list column with a time to the minute and, under it, how long ago or ahead it is."""

    @admin.display(description=description, ordering=field)
    def show(model_admin, obj):
        value = getattr(obj, field)
        if value is None:
            return "never"
        return format_html("{}<br><small>{}</small>", clock_time(value), distance(value))

    return show


# The token fields admin pages show, their times readable.
TOKEN_TIMES = {"created_at": "created", "expires_at": "expires", "last_used_at": "last_used"}
TOKEN_FIELDS = [TOKEN_TIMES.get(field, field) for field in SessionToken.SHOWN_FIELDS]


class ReadableTokenTimes:
    """The token times of TOKEN_FIELDS, for the token inline and the token admin."""

    created = shown_time("created_at", "created")
    expires = shown_time("expires_at", "expires")
    last_used = shown_time("last_used_at", "last used")


def plural(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"


def manifest_url():
    return f"{settings.COLLAB_PUBLIC_URL}/addin/manifest.xml"


class ThrottledLoginForm(AdminAuthenticationForm):
    """The admin's login, refused before the password is checked after too many failed sign-ins."""

    def clean(self):
        attempts = LoginAttempts(self.cleaned_data.get("username", ""), request_address(self.request))
        refusal = attempts.refusal()
        if refusal is not None:
            raise ValidationError(refusal.describe(), code="throttled")
        try:
            return super().clean()
        except ValidationError as error:
            if error.code == "invalid_login":
                attempts.note_failure()
            raise


admin.site.login_form = ThrottledLoginForm


class CreateSessionForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)


class IssueTokenForm(forms.Form):
    role = forms.ChoiceField(choices=SessionToken.Role.choices)
    label = forms.CharField(max_length=100, required=False)
    expires_in_days = forms.IntegerField(
        min_value=0,
        max_value=3660,
        required=False,
        help_text="Blank: the role's default lifetime (a publish code's for Word). 0: never expires.",
    )

    def expires_at(self):
        days = self.cleaned_data["expires_in_days"]
        if days is None:
            # A word token is shown as a publish code.
            if self.cleaned_data["role"] == SessionToken.Role.WORD:
                return publish_code_expiry()
            return default_token_expiry(self.cleaned_data["role"])
        return timezone.now() + timedelta(days=days) if days else None


class TokenInlineForm(forms.ModelForm):
    class Meta:
        model = SessionToken
        fields = ["revoked"]

    def clean_revoked(self):
        revoked = self.cleaned_data["revoked"]
        if self.instance.revoked and not revoked:
            raise forms.ValidationError("A revoked token stays revoked; issue a new one instead.")
        return revoked


class TokenInline(ReadableTokenTimes, admin.TabularInline):
    """The session's tokens; ticking "revoked" and saving revokes through the service."""

    model = SessionToken
    form = TokenInlineForm
    fields = TOKEN_FIELDS
    # "revoked" stays editable: ticking it revokes through the service.
    readonly_fields = [field for field in TOKEN_FIELDS if field != "revoked"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        # New tokens come from "Issue a token", which shows the secret once.
        return False


class RevisionInline(admin.TabularInline):
    """The session's stored versions; each opens a read-only page with a preview."""

    model = Revision
    fields = ["version", "created", "input_bytes", "html_bytes", "conversion_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    created = shown_time("created_at", "created")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("html", "warnings")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CollabSession)
class CollabSessionAdmin(admin.ModelAdmin):
    # Few, short columns, so the list reads beside the filters at 1280 px; the key is a filter.
    list_display = ["__str__", "status", "version", "live_counts", "last_update", "created"]
    list_filter = ["status", "created_at", "updated_at", "integration_key"]
    list_select_related = ["integration_key"]
    search_fields = ["id", "title"]
    date_hierarchy = "created_at"
    actions = ["end_sessions"]
    inlines = [TokenInline, RevisionInline]
    fieldsets = [
        (None, {"fields": ["id", "title", "status", "version", "live_counts", "integration_key"]}),
        ("How to connect", {"fields": ["how_to_connect"]}),
        ("Times", {"fields": ["created_on", "updated_on", "ended_on", "end_reason"]}),
        ("Current document", {"fields": ["current_html"], "classes": ["collapse"]}),
    ]
    readonly_fields = [
        "id",
        "status",
        "version",
        "live_counts",
        "integration_key",
        "how_to_connect",
        "created_on",
        "updated_on",
        "ended_on",
        "end_reason",
        "current_html",
    ]

    @admin.display(description="connected now")
    def live_counts(self, session):
        viewers, publishers = presence.counts_sync(session.pk)
        return f"{plural(viewers, 'viewer')}, {plural(publishers, 'publisher')}"

    last_update = listed_time("updated_at", "last update")
    created = listed_time("created_at", "created")
    created_on = shown_time("created_at", "created")
    updated_on = shown_time("updated_at", "last update")
    ended_on = shown_time("ended_at", "ended")

    @admin.display(description="how to connect")
    def how_to_connect(self, session):
        issue = reverse("admin:sessions_app_collabsession_issue_token", args=[session.pk])
        return format_html(
            "<p>Tokens are stored hashed, so links and codes are shown once, when their token is issued.</p>"
            '<p><a class="button" href="{}?role=client">Issue a viewer link</a> '
            '<a class="button" href="{}?role=word">Issue a publish code for Word</a></p>'
            "<p>WebSocket URL: <code>{}</code><br>"
            'Word add-in manifest: <a href="{}">{}</a></p>',
            issue,
            issue,
            links.ws_url(),
            manifest_url(),
            manifest_url(),
        )

    @admin.display(description="HTML")
    def current_html(self, session):
        return sandboxed_preview(session.html, f"Version {session.version}")

    @admin.action(
        description="End selected sessions (their sockets are told and closed)", permissions=["change"]
    )
    def end_sessions(self, request, queryset):
        ended = sum(do_end_session(session_id) for session_id in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{ended} session(s) ended.", messages.SUCCESS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Deleting an active session would strand its sockets; end it first, delete it from its page.
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return obj is not None and not obj.is_active and super().has_delete_permission(request, obj)

    def get_queryset(self, request):
        # A list of sessions never needs their HTML; the change page loads it when it shows it.
        return super().get_queryset(request).defer("html")

    def save_model(self, request, obj, form, change):
        if change:
            # Only the title is editable; never write back a version a publish may have replaced.
            obj.save(update_fields=["title"])
        else:
            obj.save()

    def save_formset(self, request, form, formset, change):
        if formset.model is not SessionToken:
            super().save_formset(request, form, formset, change)
            return
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for token_form in formset.forms:
            token = token_form.instance
            if token.pk and "revoked" in token_form.changed_data and token_form.cleaned_data["revoked"]:
                do_revoke_token(token)
                formset.changed_objects.append((token, ["revoked"]))

    def get_urls(self):
        own = [
            path(
                "<str:object_id>/issue-token/",
                self.admin_site.admin_view(self.issue_token_view),
                name="sessions_app_collabsession_issue_token",
            ),
            path(
                "<str:object_id>/end/",
                self.admin_site.admin_view(require_POST(self.end_session_view)),
                name="sessions_app_collabsession_end",
            ),
        ]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        """Create a session through the service and show its tokens, links and publish code once."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CreateSessionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            session, word_secret, client_secret = do_create_session(form.cleaned_data["title"])
            details = links.connection_details(session, word_secret, client_secret)
            rows = [
                ("Session id", details["id"], False),
                ("Viewer link", details["viewer_url"], True),
                ("Publish code for the Word add-in", details["publish_code"], False),
                ("Word token", word_secret, False),
                ("Client token", client_secret, False),
                ("WebSocket URL", details["ws_url"], False),
                ("Word add-in manifest", details["manifest_url"], True),
            ]
            return self.render_secrets(request, session, "Session created", rows)
        return self.render_connect(request, None, "Add session", form, "Create session")

    def end_session_view(self, request, object_id):
        """The session page's "End session" button: end it through the service, as the list's action does."""
        session = get_object_or_404(CollabSession, pk=unquote(object_id))
        if not self.has_change_permission(request, session):
            raise PermissionDenied
        if do_end_session(session.pk):
            self.message_user(
                request,
                f"{session} ended: its viewers and publishers were told and closed.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, f"{session} had already ended.", messages.WARNING)
        return redirect("admin:sessions_app_collabsession_change", quote(session.pk))

    def issue_token_view(self, request, object_id):
        """Issue a token and show its secret once: a viewer link, or a publish code for Word."""
        session = get_object_or_404(CollabSession, pk=unquote(object_id))
        if not self.has_change_permission(request, session):
            raise PermissionDenied
        if not session.is_active:
            self.message_user(request, "This session has ended; nobody can connect to it.", messages.ERROR)
            return redirect("admin:sessions_app_collabsession_change", quote(session.pk))
        form = IssueTokenForm(request.POST or None, initial={"role": request.GET.get("role", "client")})
        if request.method == "POST" and form.is_valid():
            role = form.cleaned_data["role"]
            token, secret = do_issue_token(
                session, role, label=form.cleaned_data["label"], expires_at=form.expires_at()
            )
            expiry = readable_time(token.expires_at)
            if role == SessionToken.Role.CLIENT:
                rows = [
                    ("Viewer link", links.viewer_url(session.pk, secret), True),
                    ("Client token", secret, False),
                ]
            else:
                rows = [
                    ("Publish code for the Word add-in", links.publish_code(session.pk, secret), False),
                    ("Word token", secret, False),
                    ("WebSocket URL", links.ws_url(), False),
                    ("Word add-in manifest", manifest_url(), True),
                ]
            rows.append(("Expires", expiry, False))
            return self.render_secrets(request, session, f"New {role} token", rows)
        return self.render_connect(request, session, "Issue a token", form, "Issue token")

    def render_connect(self, request, session, title, form, submit):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "session": session,
            "form": form,
            "submit": submit,
        }
        return TemplateResponse(request, CONNECT_TEMPLATE, context)

    def render_secrets(self, request, session, title, rows):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "session": session,
            "rows": rows,
        }
        response = TemplateResponse(request, CONNECT_TEMPLATE, context)
        # The page holds secrets: no browser or proxy may keep it.
        add_never_cache_headers(response)
        return response


@admin.register(SessionToken)
class SessionTokenAdmin(ReadableTokenTimes, admin.ModelAdmin):
    list_display = ["__str__", "session", "role", "label", "expires", "revoked", "last_used", "created"]
    list_filter = ["role", "revoked", "created_at"]
    search_fields = ["prefix", "label", "session__id", "session__title"]
    list_select_related = ["session"]
    actions = ["revoke_tokens"]
    readonly_fields = ["session", *TOKEN_FIELDS]
    fields = readonly_fields

    @admin.action(
        description="Revoke selected tokens (sockets using them are closed)", permissions=["change"]
    )
    def revoke_tokens(self, request, queryset):
        tokens = list(queryset.filter(revoked=False))
        for token in tokens:
            do_revoke_token(token)
        self.message_user(request, f"{len(tokens)} token(s) revoked.", messages.SUCCESS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_add_permission(self, request):
        # Tokens are issued from their session's page, which shows the secret once.
        return False

    def has_delete_permission(self, request, obj=None):
        # Revoke, don't delete; they go with their session once it has ended.
        return obj is not None and not obj.session.is_active and super().has_delete_permission(request, obj)


@admin.register(Revision)
class RevisionAdmin(admin.ModelAdmin):
    """Stored versions, read-only, with a sandboxed preview."""

    list_display = ["__str__", "session", "version", "html_bytes", "conversion_ms", "created"]
    list_filter = ["created_at"]
    search_fields = ["session__id", "session__title"]
    list_select_related = ["session"]
    fields = [
        "session",
        "version",
        "created",
        "input_bytes",
        "html_bytes",
        "conversion_ms",
        "warnings",
        "preview",
    ]
    readonly_fields = fields
    created = shown_time("created_at", "created")

    @admin.display(description="preview")
    def preview(self, revision):
        return sandboxed_preview(revision.html, f"Version {revision.version}")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("session")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Revisions go with their session once it has ended.
        return obj is not None and not obj.session.is_active and super().has_delete_permission(request, obj)


class CreateIntegrationKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who the key is for: the host application.")
    max_sessions = forms.IntegerField(
        min_value=0,
        max_value=1_000_000,
        initial=0,
        help_text="The most active sessions the key may hold at once; 0: no cap.",
    )


class KeySessionInline(admin.TabularInline):
    """The active sessions a key created; all of them, ended ones too, are one link away."""

    model = CollabSession
    verbose_name_plural = "active sessions"
    fields = ["id", "title", "version", "created_at", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=CollabSession.Status.ACTIVE).defer("html")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(IntegrationKey)
class IntegrationKeyAdmin(admin.ModelAdmin):
    """Host applications' keys for Edit in Word: made here, the secret shown once; revoked by the action."""

    list_display = ["__str__", "max_sessions", "active_sessions", "revoked", "last_used_at", "created_at"]
    list_filter = ["revoked", "created_at"]
    search_fields = ["name", "prefix"]
    actions = ["revoke_keys"]
    inlines = [KeySessionInline]
    fields = [
        "name",
        "prefix",
        "max_sessions",
        "all_sessions",
        "revoked",
        "revoked_at",
        "created_at",
        "last_used_at",
    ]
    readonly_fields = ["prefix", "all_sessions", "revoked", "revoked_at", "created_at", "last_used_at"]

    def get_queryset(self, request):
        active = Count("sessions", filter=Q(sessions__status=CollabSession.Status.ACTIVE))
        return super().get_queryset(request).annotate(active_session_count=active)

    @admin.display(description="active sessions", ordering="active_session_count")
    def active_sessions(self, key):
        return key.active_session_count

    @admin.display(description="sessions")
    def all_sessions(self, key):
        url = reverse("admin:sessions_app_collabsession_changelist")
        query = urlencode({"integration_key__id__exact": key.pk})
        return format_html('<a href="{}?{}">Every session of this key</a>', url, query)

    @admin.action(
        description="Revoke selected keys (sockets signed in with them are closed)", permissions=["change"]
    )
    def revoke_keys(self, request, queryset):
        revoked = sum(do_revoke_integration_key(key) for key in queryset.filter(revoked=False))
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        # Revoke, don't delete: a revoked key can go, its sessions stay.
        return obj is not None and obj.revoked and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        # New keys come from add_view; only the name and the cap change here.
        obj.save(update_fields=["name", "max_sessions"])

    def add_view(self, request, form_url="", extra_context=None):
        """Create a key through the service and show its secret once."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CreateIntegrationKeyForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            key, secret = do_create_integration_key(
                form.cleaned_data["name"], form.cleaned_data["max_sessions"]
            )
            rows = [
                ("Integration key (editinword_token)", secret),
                ("Name", key.name),
                ("Max sessions", key.max_sessions or "no cap"),
                (
                    "editinword_generate_url",
                    f"{settings.COLLAB_PUBLIC_URL}/edit-in-word/generate-word-launch-link",
                ),
                ("editinword_websocket_url", links.ws_url()),
            ]
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Integration key created",
                "key": key,
                "rows": rows,
            }
            response = TemplateResponse(request, KEY_CREATED_TEMPLATE, context)
            # The page holds the secret: no browser or proxy may keep it.
            add_never_cache_headers(response)
            return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Add integration key",
            "session": None,
            "form": form,
            "submit": "Create key",
        }
        return TemplateResponse(request, CONNECT_TEMPLATE, context)
