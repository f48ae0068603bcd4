"""`DicomNode`: a DICOM C-STORE SCP (pynetdicom) that answers each received radiograph with an SR and a heat map.

The PACS sends an image (C-STORE); the node decodes it with the Predictor, predicts with a Grad-CAM map, and
answers the C-STORE at once: Success, or a failure status (0xC000 "cannot understand") with an error comment
when the image cannot be decoded. The results — a Comprehensive SR and a Secondary Capture
(`radcnn.serve.sr`), both in the original study — are sent back to the PACS named by ``reply_to`` on a
separate association by one sender thread, so a slow or refusing PACS never blocks receiving.

Safety: only the calling AE titles in ``allowed`` may associate (others are rejected, and the attempt logged);
C-ECHO (Verification) answers for monitoring. A PACS that rejects the association, is down, or refuses an
object with a failure status is logged as an error and counted in ``failed``; the node keeps running. The node
stores nothing on disk. Log lines name images by a running number, never by patient, study or UID.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from radcnn.errors import ConfigError, ImageReadError
from radcnn.serve.heatmap import check_method
from radcnn.serve.limits import loggable
from radcnn.serve.predictor import Predictor
from radcnn.serve.sr import ResultObjects, build_results

log = logging.getLogger(__name__)

SUCCESS = 0x0000
CANNOT_UNDERSTAND = 0xC000  # Storage Service class: "Error: Cannot understand"
_WARNINGS = (0x0001, 0xB000, 0xB006, 0xB007)  # stored with coercion or elements discarded: still stored


@dataclass(frozen=True)
class Peer:
    """Where results go: ``HOST:PORT:AET``."""

    host: str
    port: int
    ae_title: str

    @classmethod
    def parse(cls, text: str) -> Peer:
        host, sep, rest = text.rpartition(":")
        host, sep2, port = host.rpartition(":")
        if not (sep and sep2 and host and port.isdigit() and rest and 0 < int(port) < 65536 and len(rest) <= 16):
            raise ConfigError(f"--reply-to must be HOST:PORT:AET (AE title of at most 16 characters), got {text!r}")
        return cls(host, int(port), rest)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def _status(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]
    return status


class DicomNode:
    def __init__(
        self,
        predictor: Predictor,
        *,
        reply_to: Peer,
        ae_title: str = "RADCNN",
        host: str = "127.0.0.1",
        port: int = 11112,
        allowed: tuple[str, ...] | None = None,
        heatmap_method: str = "gradcam",
        timeout_s: float = 30.0,
    ):
        if not 0 < len(ae_title) <= 16:
            raise ConfigError(f"AE title must have 1 to 16 characters, got {ae_title!r}")
        self.predictor, self.reply_to, self.ae_title = predictor, reply_to, ae_title
        self.host, self.requested_port = host, port
        self.allowed = tuple(allowed) if allowed else (reply_to.ae_title,)
        self.heatmap_method = check_method(heatmap_method)
        self.timeout_s = timeout_s
        self.received = self.refused = self.delivered = self.failed = 0
        self._numbers = itertools.count(1)
        self._outbox: queue.Queue[tuple[int, ResultObjects] | None] = queue.Queue()
        self._server: ThreadedAssociationServer | None = None
        self._sender: threading.Thread | None = None

    # --- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        ae = AE(ae_title=self.ae_title)
        ae.require_calling_aet = list(self.allowed)
        ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        self._sender = threading.Thread(target=self._send_loop, name="radcnn-dicom-sender", daemon=True)
        self._sender.start()
        self._server = ae.start_server((self.host, self.requested_port), block=False, evt_handlers=handlers)
        log.info(
            "DICOM node %s listening on %s:%d (C-STORE, C-ECHO) for %s; results go to %s",
            self.ae_title,
            self.host,
            self.port,
            ", ".join(self.allowed),
            self.reply_to,
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return self._server.server_address[1] if self._server else self.requested_port

    def wait_idle(self) -> None:
        """Block until every queued result has been sent (or its failure logged)."""
        self._outbox.join()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._sender is not None:
            self._outbox.put(None)
            self._sender.join(timeout=self.timeout_s)
            self._sender = None

    # --- receiving ------------------------------------------------------------------------------------------

    def _on_echo(self, event) -> int:
        log.info("C-ECHO from %s", event.assoc.requestor.ae_title)
        return SUCCESS

    def _on_rejected(self, event) -> None:
        requestor = event.assoc.requestor
        log.warning(
            "rejected an association from AE title %r at %s: not an allowed calling AE title (%s)",
            requestor.ae_title,
            requestor.address,
            ", ".join(self.allowed),
        )

    def _on_store(self, event) -> int | Dataset:
        number = next(self._numbers)
        caller = event.assoc.requestor.ae_title
        self.received += 1
        try:
            data = event.encoded_dataset(include_meta=True)
            prediction = self.predictor.predict_bytes(
                data, f"received image {number}", heatmap=self.heatmap_method, keep_image=True
            )
        except ImageReadError as exc:
            self.refused += 1
            log.warning("image %d from %s refused (0xC000): %s", number, caller, loggable(exc.reason))
            return _status(CANNOT_UNDERSTAND, f"radcnn cannot read this image: {exc.reason}")
        try:
            original = event.dataset
            original.file_meta = event.file_meta
            results = build_results(original, prediction)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            # highdicom refuses headers it cannot copy into a conformant SR (e.g. no StudyInstanceUID).
            self.refused += 1
            log.warning("image %d from %s: cannot build the report (%s)", number, caller, loggable(str(exc)))
            return _status(CANNOT_UNDERSTAND, f"radcnn cannot report on this object: {type(exc).__name__}")
        summary = ", ".join(
            f"{label} {p:.3f} ({'positive' if prediction.decisions[label] else 'negative'})"
            for label, p in prediction.probabilities.items()
        )
        log.info(
            "image %d from %s: %s%s; results queued for %s",
            number,
            caller,
            summary,
            f" [{len(prediction.warnings)} warnings]" if prediction.warnings else "",
            self.reply_to,
        )
        self._outbox.put((number, results))
        return SUCCESS

    # --- replying -------------------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            item = self._outbox.get()
            try:
                if item is None:
                    return
                number, results = item
                if self._send(number, results):
                    self.delivered += 1
                else:
                    self.failed += 1
            finally:
                self._outbox.task_done()

    def _send(self, number: int, results: ResultObjects) -> bool:
        objects = [("SR", results.sr)]
        if results.secondary_capture is not None:
            objects.append(("secondary capture", results.secondary_capture))
        ae = AE(ae_title=self.ae_title)
        for _, dataset in objects:
            ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        peer = self.reply_to
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
        if not assoc.is_established:
            why = "rejected the association" if assoc.is_rejected else "did not accept an association (down?)"
            log.error("image %d: PACS %s %s; its results were not delivered", number, peer, why)
            return False
        delivered = True
        try:
            for kind, dataset in objects:
                status = assoc.send_c_store(dataset)
                code = int(status.Status) if status and "Status" in status else None
                if code is None:
                    log.error("image %d: PACS %s sent no response to the %s", number, peer, kind)
                    delivered = False
                elif code != SUCCESS and code not in _WARNINGS:
                    comment = loggable(str(status.get("ErrorComment", "")))
                    detail = f" ({comment})" if comment else ""
                    log.error("image %d: PACS %s refused the %s with status 0x%04X%s", number, peer, kind, code, detail)
                    delivered = False
        finally:
            if assoc.is_established:
                assoc.release()
        if delivered:
            log.info("image %d: SR and heat map stored on %s", number, peer)
        return delivered
