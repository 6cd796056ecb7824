"""OPC UA server: one object per station whose variables are the exported values.

The server runs asyncua on its own event loop thread; inspections are written to it from the
sink's queue thread, health values once a second. Only the Basic256Sha256 SignAndEncrypt
endpoint is offered. A client's application certificate must be in `trusted_clients`, and it
must present an X.509 user identity (the same certificate) unless `allow_anonymous` is set.
asyncua is LGPL-3.0, so this module is imported only when `opcua:` is configured.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from pathlib import Path

from asyncua import Server as UaServer
from asyncua import ua
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

from lineside.daemon.config import ConfigError, OpcUa
from lineside.daemon.sinks import Result
from lineside.daemon.sinks.exported import BY_PATH, INSPECTION_PATHS, VALUES, Health, Value, View
from lineside.daemon.sinks.loop_thread import LoopThread
from lineside.daemon.telemetry import Telemetry

log = logging.getLogger(__name__)

VARIANTS = {
    "string": ua.VariantType.String,
    "double": ua.VariantType.Double,
    "uint64": ua.VariantType.UInt64,
    "bool": ua.VariantType.Boolean,
    "datetime": ua.VariantType.DateTime,
}
EMPTY = {"string": "", "double": 0.0, "uint64": 0, "bool": False, "datetime": None}
START_TIMEOUT_S = 30.0
WRITE_TIMEOUT_S = 5.0


def variant(value: Value, data: object) -> ua.Variant:
    if data is None:
        data = EMPTY[value.kind]
    elif value.kind == "datetime":
        data = datetime.datetime.fromtimestamp(float(data), datetime.UTC)
    return ua.Variant(data, VARIANTS[value.kind])


class Server:
    """A sink that serves the station's values over OPC UA."""

    def __init__(self, cfg: OpcUa, station: str, telemetry: Telemetry, health: Health) -> None:
        self.cfg, self.station = cfg, station
        self.view = View(telemetry, health)
        self._loop = LoopThread("opcua")
        self._server: UaServer | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._health_task: asyncio.Task | None = None
        self._station_node = None
        self._ns = 0

    def start(self) -> None:
        """Listening when this returns; a certificate it cannot use stops the start."""
        try:
            self._loop.start(self._serve(), START_TIMEOUT_S)
        except Exception as exc:
            raise ConfigError(f"opcua: cannot start the server ({exc})") from None
        log.info("opcua: serving %s on %s", self.station, self.cfg.endpoint)

    def publish(self, result: Result) -> None:
        self.view.record(result)
        self._loop.run(self._write(INSPECTION_PATHS, stamped=True), WRITE_TIMEOUT_S)

    def run(self, fn, timeout: float = WRITE_TIMEOUT_S):
        """`await fn(server, station object, namespace)` on the server's loop, for parts that
        add their own nodes (the PLC's trigger); returns its result."""
        return self._loop.run(fn(self._server, self._station_node, self._ns), timeout)

    def submit(self, coro) -> None:
        """Run a coroutine on the server's loop without waiting for it."""
        self._loop.submit(coro)

    def close(self) -> None:
        if self._server is not None:
            try:
                self._loop.run(self._shutdown(), WRITE_TIMEOUT_S)
            except Exception:
                log.exception("opcua: server did not stop cleanly")
        self._loop.stop(WRITE_TIMEOUT_S)

    async def _serve(self) -> None:
        cfg = self.cfg
        server = UaServer()
        await server.init()
        server.set_endpoint(cfg.endpoint)
        server.set_server_name(f"Lineside {self.station}")
        await server.set_application_uri(f"{cfg.namespace}:{self.station}")
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        tokens: list[type] = [ua.X509IdentityToken]
        if cfg.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        await server.load_certificate(str(cfg.certificate))
        await server.load_private_key(str(cfg.private_key))
        store = TrustStore([Path(cfg.trusted_clients)], [])
        await store.load()
        validator = CertificateValidator(
            CertificateValidatorOptions.TRUSTED_VALIDATION
            | CertificateValidatorOptions.PEER_CLIENT,
            store,
        )
        server.set_certificate_validator(validator)
        ns = await server.register_namespace(cfg.namespace)
        await self._build(server, ns)
        self._server = server
        await self._write(tuple(v.path for v in VALUES if v.path not in INSPECTION_PATHS))
        await server.start()
        self._health_task = asyncio.get_running_loop().create_task(self._health_loop())

    async def _build(self, server: UaServer, ns: int) -> None:
        """The station object, a folder per group (Inspection, Counts...), a variable per value."""
        station = await server.nodes.objects.add_object(ns, self.station)
        self._station_node, self._ns = station, ns
        folders = {}
        for value in VALUES:
            group, _, _ = value.path.rpartition("/")
            parent = station
            if group:
                if group not in folders:
                    folders[group] = await station.add_folder(ns, group)
                parent = folders[group]
            node = await parent.add_variable(
                ns, value.name, variant(value, None), varianttype=VARIANTS[value.kind]
            )
            await node.write_attribute(
                ua.AttributeIds.Description,
                ua.DataValue(ua.Variant(ua.LocalizedText(value.doc), ua.VariantType.LocalizedText)),
            )
            self._nodes[value.path] = node.nodeid

    async def _write(self, paths: tuple[str, ...], stamped: bool = False) -> None:
        """Inspection values carry the inspection's time as their source timestamp, so a client
        that subscribes with the StatusValueTimestamp trigger sees every part, even two passes
        in a row; health values change only when they change."""
        values = self.view.values()
        at = datetime.datetime.now(datetime.UTC) if stamped else None
        for path in paths:
            data = ua.DataValue(variant(BY_PATH[path], values[path]), SourceTimestamp=at)
            await self._server.write_attribute_value(self._nodes[path], data)

    async def _health_loop(self) -> None:
        """Health values from the start (a client that connects at once reads the camera's
        state, not an empty string), then once a second."""
        health_paths = tuple(v.path for v in VALUES if v.path not in INSPECTION_PATHS)
        while True:
            try:
                await self._write(health_paths)
            except Exception:
                log.exception("opcua: health update failed")
            await asyncio.sleep(1.0)

    async def _shutdown(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        await self._server.stop()
