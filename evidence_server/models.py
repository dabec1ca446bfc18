"""Every feature's tables, imported once so that Alembic and create_all see the whole schema."""

from evidence_server.accounts.models import LoginSession, Unit, User
from evidence_server.audit import service as _sequencing  # noqa: F401  (audit entries get their place at flush)
from evidence_server.audit.models import AuditCheckpoint, AuditEvent, AuditLogHead
from evidence_server.cases.models import Case, CaseLink, CaseShare
from evidence_server.compliance.models import ComplianceFlag, ComplianceScan, FlagEvent
from evidence_server.db import Base
from evidence_server.docks.models import DockPort
from evidence_server.extraction.models import IssuedDocument, PackageLink
from evidence_server.fleet.models import StationHeartbeat
from evidence_server.ledger.models import Device, DeviceReading, DockMismatch, LedgerEntry, LendRequest, UnitAllocation
from evidence_server.media.models import DerivedMedia
from evidence_server.push.models import PushAccount, PushContainer, PushDevice, PushObject, PushRefusal, PushUser, Track
from evidence_server.recordings.models import Recording
from evidence_server.retention.models import (
    CaseKind,
    DisposalApproval,
    DisposalCertificate,
    DisposalItem,
    DisposalRequest,
    LegalHold,
    RetentionChange,
    RetentionChangeApproval,
    RetentionPolicyVersion,
    RetentionState,
)
from evidence_server.stations.models import EndedStationToken, EnrolmentCode, Station
from evidence_server.transfers.models import Transfer, TransferFile, VanishedFile
from evidence_server.uploads.models import IntegrityIncident, Upload

__all__ = [
    "IssuedDocument",
    "PackageLink",
    "Device",
    "DeviceReading",
    "DockMismatch",
    "LedgerEntry",
    "LendRequest",
    "UnitAllocation",
    "AuditCheckpoint",
    "AuditLogHead",
    "Case",
    "CaseLink",
    "CaseShare",
    "DerivedMedia",
    "DockPort",
    "ComplianceFlag",
    "ComplianceScan",
    "FlagEvent",
    "AuditEvent",
    "Base",
    "EndedStationToken",
    "EnrolmentCode",
    "IntegrityIncident",
    "LoginSession",
    "PushAccount",
    "PushContainer",
    "PushDevice",
    "PushObject",
    "PushRefusal",
    "PushUser",
    "Track",
    "Recording",
    "CaseKind",
    "DisposalApproval",
    "DisposalCertificate",
    "DisposalItem",
    "DisposalRequest",
    "LegalHold",
    "RetentionChange",
    "RetentionChangeApproval",
    "RetentionPolicyVersion",
    "RetentionState",
    "Station",
    "StationHeartbeat",
    "Transfer",
    "TransferFile",
    "Unit",
    "Upload",
    "User",
    "VanishedFile",
]
