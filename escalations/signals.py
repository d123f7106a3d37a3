"""Signals that may end a staff member's access: logout, deactivation, a password change, a
lost staff flag, superuser flag, role or permission, deletion. Receivers only work out whom it
concerns and call :func:`escalations.services.staff_sessions_end`; sockets decide by
re-checking (``escalations.selectors.staff_session_valid``).

Also: staff approvals opened, edited, decided or expired reach the live queue at once
(``conversations.interrupts.interrupt_changed``, sent after commit)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest

from conversations.interrupts import InterruptChange, interrupt_changed
from conversations.models import Interrupt
from escalations.realtime import broadcast, interrupt_frame
from escalations.services import staff_sessions_end

# The fields whose change can end access (the password changes the session auth hash).
_ACCESS_FIELDS = ("password", "is_active", "is_staff", "is_superuser")
_REMOVALS = ("post_remove", "post_clear")
# Noted on the instance between a pre_ and a post_ signal.
_BEFORE = "_escalations_access_before"
_CLEARED = "_escalations_cleared_users"


@receiver(user_logged_out, dispatch_uid="escalations_staff_logged_out")
def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None or user.pk is None:
        return
    session = getattr(request, "session", None)
    staff_sessions_end(
        user_ids=[user.pk],
        reason="logged_out",
        session_key=getattr(session, "session_key", None),
    )


@receiver(pre_save, sender=User, dispatch_uid="escalations_staff_user_pre_save")
def _remember_access(sender: Any, instance: User, **kwargs: Any) -> None:
    if instance.pk is None:
        return
    fields = kwargs.get("update_fields")
    if fields is not None and not set(fields) & set(_ACCESS_FIELDS):
        return  # e.g. last_login at login: nothing to compare
    instance.__dict__[_BEFORE] = (
        User.objects.filter(pk=instance.pk).values_list(*_ACCESS_FIELDS).first()
    )


@receiver(post_save, sender=User, dispatch_uid="escalations_staff_user_saved")
def _access_changed(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    before = instance.__dict__.pop(_BEFORE, None)
    if created or before is None:
        return
    after = tuple(getattr(instance, field) for field in _ACCESS_FIELDS)
    if before != after:
        staff_sessions_end(user_ids=[instance.pk], reason="account_changed")


@receiver(post_delete, sender=User, dispatch_uid="escalations_staff_user_deleted")
def _user_deleted(sender: Any, instance: User, **kwargs: Any) -> None:
    if instance.pk is not None:
        staff_sessions_end(user_ids=[instance.pk], reason="account_deleted")


def _users_of_groups(group_ids: Any) -> list[int]:
    return list(User.objects.filter(groups__in=list(group_ids)).values_list("pk", flat=True))


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="escalations_staff_groups")
@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="escalations_staff_perms")
def _user_relations_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    if action == "pre_clear" and reverse:
        # Clearing a group's (or permission's) users: pk_set is None afterwards; note them now.
        instance.__dict__[_CLEARED] = list(instance.user_set.values_list("pk", flat=True))
        return
    if action not in _REMOVALS:
        return
    if not reverse:
        user_ids = [instance.pk]  # a user lost groups or permissions
    elif action == "post_clear":
        user_ids = instance.__dict__.pop(_CLEARED, [])
    else:
        user_ids = list(pk_set or ())  # users removed from a group or a permission
    staff_sessions_end(user_ids=user_ids, reason="role_removed")


@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="escalations_staff_roles")
def _role_permissions_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    if action == "pre_clear":
        groups = (
            [instance.pk] if not reverse else list(instance.group_set.values_list("pk", flat=True))
        )
        instance.__dict__[_CLEARED] = _users_of_groups(groups)
        return
    if action not in _REMOVALS:
        return
    if action == "post_clear":
        user_ids = instance.__dict__.pop(_CLEARED, [])
    elif not reverse:
        user_ids = _users_of_groups([instance.pk])  # a role lost permissions
    else:
        user_ids = _users_of_groups(pk_set or ())  # a permission taken from roles
    staff_sessions_end(user_ids=user_ids, reason="role_removed")


@receiver(interrupt_changed, dispatch_uid="escalations_staff_interrupt_changed")
def _interrupt_changed(
    sender: Any, interrupt: Interrupt, change: InterruptChange, **kwargs: Any
) -> None:
    # Only staff approvals are in the queue; the customer decides the others in the chat.
    if interrupt.approver == Interrupt.Approver.STAFF:
        broadcast(interrupt_frame(change, interrupt))
