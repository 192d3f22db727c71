"""Typed application state keys (aiohttp AppKey)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from dispatch.auth.identity_providers import SmsSender
from dispatch.auth.passwords import Passwords
from dispatch.infra.clock import Clock
from dispatch.infra.connections import Infrastructure
from dispatch.infra.metrics import Metrics
from dispatch.infra.precinct_registry import PrecinctRegistry
from dispatch.infra.publisher import Publisher
from dispatch.infra.queue_index import PriorityQueue
from dispatch.infra.redis_writes import RedisWrites
from dispatch.services.assignments import AssignmentService
from dispatch.services.calls import CallService
from dispatch.services.citizens import CitizenServices
from dispatch.services.follow_up import AlarmFollowUp
from dispatch.services.incidents import IncidentQueries
from dispatch.services.intake import IntakeService
from dispatch.services.intake_budgets import IntakeBudgets
from dispatch.services.messages import MessageService
from dispatch.services.officers import OfficerService
from dispatch.services.overdue import OverdueWatch
from dispatch.services.staff_auth import StaffAuth
from dispatch.services.tracking import TrackingService
from dispatch.services.workflow import Workflow
from dispatch.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
INFRA = web.AppKey("infrastructure", Infrastructure)
METRICS = web.AppKey("metrics", Metrics)
PASSWORDS = web.AppKey("passwords", Passwords)
PRECINCTS = web.AppKey("precincts", PrecinctRegistry)

# Services, built by the composition root once the infrastructure is up.
CLOCK = web.AppKey("clock", Clock)
PUBLISHER = web.AppKey("publisher", Publisher)
QUEUE = web.AppKey("queue", PriorityQueue)
REDIS_WRITES = web.AppKey("redis_writes", RedisWrites)
SMS = web.AppKey("sms", SmsSender)
CITIZENS = web.AppKey("citizens", CitizenServices)
INTAKE = web.AppKey("intake", IntakeService)
FOLLOW_UP = web.AppKey("follow_up", AlarmFollowUp)
INTAKE_BUDGETS = web.AppKey("intake_budgets", IntakeBudgets)
TRACKING = web.AppKey("tracking", TrackingService)
STAFF_AUTH = web.AppKey("staff_auth", StaffAuth)
WORKFLOW = web.AppKey("workflow", Workflow)
INCIDENTS = web.AppKey("incidents", IncidentQueries)
OFFICERS = web.AppKey("officers", OfficerService)
OVERDUE = web.AppKey("overdue", OverdueWatch)
MESSAGES = web.AppKey("messages", MessageService)
ASSIGNMENTS = web.AppKey("assignments", AssignmentService)
CALLS = web.AppKey("calls", CallService)
# Requests to other nodes (a pick-up of a call whose media another node holds).
NODE_CLIENT = web.AppKey("node_client", aiohttp.ClientSession)
