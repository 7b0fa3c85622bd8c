"""Ferry naming policy in Python: the twin of examples/plugins/dr-rename-policy (Rust).

Topics of the origin cluster whose name starts with `prod.` are mirrored as `dr.<rest>`
(`prod.orders.global` -> `dr.orders.global`); every other topic is named as MirrorMaker 2's
default policy names it (`<alias>.<topic>`). The inverse (`topic_source`, `upstream_topic`)
keeps cycle detection working: `dr.orders.global` is known to come from the origin cluster.

Configuration (`policy.with`): `from` (default `prod.`), `to` (default `dr.`), `origin`
(default: the flow's `source.cluster.alias`), MM2's `replication.policy.separator`
(default `.`).

Build: scripts/build-python-plugins (componentize-py, world `policy` of wit/policy.wit).
"""

from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports


class Settings:
    """What `init` read. Module state, not instance state: componentize-py may create a new
    `ReplicationPolicy` object for each call, so anything kept on `self` would be lost."""

    separator = "."
    prefix_from = "prod."
    prefix_to = "dr."
    origin = ""


class ReplicationPolicy(exports.ReplicationPolicy):
    """The `ferry:plugin/replication-policy` export."""

    def init(self, config: List[Tuple[str, str]]) -> None:
        settings = dict(config)
        Settings.separator = settings.get("replication.policy.separator", ".")
        Settings.prefix_from = settings.get("from", "prod.")
        Settings.prefix_to = settings.get("to", "dr.")
        if not Settings.prefix_to or Settings.prefix_to == Settings.prefix_from:
            raise Err(
                f"`to` must be a non-empty prefix different from `from` "
                f"(from = {Settings.prefix_from!r}, to = {Settings.prefix_to!r})"
            )
        Settings.origin = settings.get("origin") or settings.get("source.cluster.alias", "")
        if not Settings.origin:
            raise Err("no `origin` and no `source.cluster.alias` in the configuration")

    @property
    def separator(self) -> str:
        return Settings.separator

    @property
    def prefix_from(self) -> str:
        return Settings.prefix_from

    @property
    def prefix_to(self) -> str:
        return Settings.prefix_to

    @property
    def origin(self) -> str:
        return Settings.origin

    # -- the three functions that define the naming ------------------------------------------

    def format_remote_topic(self, source_cluster_alias: str, topic: str) -> str:
        rest = topic[len(self.prefix_from):]
        if source_cluster_alias == self.origin and topic.startswith(self.prefix_from) and rest:
            return self.prefix_to + rest
        return source_cluster_alias + self.separator + topic

    def topic_source(self, topic: str) -> Optional[str]:
        if self._renamed_rest(topic) is not None:
            return self.origin
        # MM2's DefaultReplicationPolicy: the part before the first separator, if any text
        # follows it.
        index = topic.find(self.separator)
        if index < 0 or index + len(self.separator) >= len(topic):
            return None
        return topic[:index]

    def upstream_topic(self, topic: str) -> Optional[str]:
        rest = self._renamed_rest(topic)
        if rest is not None:
            return self.prefix_from + rest
        index = topic.find(self.separator)
        if index < 0 or index + len(self.separator) >= len(topic):
            return None
        return topic[index + len(self.separator):]

    def _renamed_rest(self, topic: str) -> Optional[str]:
        if topic.startswith(self.prefix_to) and len(topic) > len(self.prefix_to):
            return topic[len(self.prefix_to):]
        return None

    # -- MM2's defaults for everything else ---------------------------------------------------

    def original_topic(self, topic: str) -> str:
        current = topic
        while True:
            upstream = self.upstream_topic(current)
            if upstream is None or upstream == current:
                return current
            current = upstream

    def heartbeats_topic(self) -> str:
        return "heartbeats"

    def _internal_separator(self) -> str:
        return self.separator

    def offset_syncs_topic(self, cluster_alias: str) -> str:
        s = self._internal_separator()
        return f"mm2-offset-syncs{s}{cluster_alias}{s}internal"

    def checkpoints_topic(self, cluster_alias: str) -> str:
        s = self._internal_separator()
        return f"{cluster_alias}{s}checkpoints{s}internal"

    def is_heartbeats_topic(self, topic: str) -> bool:
        return self.original_topic(topic) == self.heartbeats_topic()

    def is_checkpoints_topic(self, topic: str) -> bool:
        s = self._internal_separator()
        return topic.endswith(f"{s}checkpoints{s}internal")

    def is_mm2_internal_topic(self, topic: str) -> bool:
        return topic.endswith(self._internal_separator() + "internal")

    def is_internal_topic(self, topic: str) -> bool:
        return (
            self.is_mm2_internal_topic(topic)
            or topic.startswith("__")
            or topic.startswith(".")
            or topic.endswith("-internal")
            or topic.endswith(".internal")
        )
