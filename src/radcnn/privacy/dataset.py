"""Apply the confidentiality profile to one pydicom Dataset, recursing into every sequence at every depth.

The walker only decides *where* an action applies; *what* the new value is comes from `actions.new_value`.
Rules beyond the table, each because it removes more and never less:

* private creators stay only when a private attribute they own was kept as safe; private group lengths
  and (gggg,0001-000F) go with the other private attributes;
* when Overlay Data (60xx,3000) is removed, the whole overlay group goes (a plane without data is invalid);
* group length elements (gggg,0000) outside the file meta are dropped (their values would be stale), and so
  are command-set elements (group 0000) and stray file meta elements (group 0002) in the dataset body;
* inside a sequence whose action is D (a dummy value: e.g. Content Sequence without the Clean Structured
  Content option), attributes the table does not list are not trusted: free text (PN, LT, ST, UT, UC) and
  dates/times become dummies, other strings are scrubbed; coded concepts and structure survive. Inside a
  sequence whose action is C, such text is scrubbed and dates shifted (see actions.py).

The audit lists attribute keywords (with their sequence path) per action, never values.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag

from radcnn.privacy.actions import REMOVE, TEXT_VRS, ValueContext, new_value
from radcnn.privacy.profile import Action, ConfidentialityProfile, Option, attribute_type, resolve_basic

_VERB = {
    Action.REMOVE: "removed",
    Action.EMPTY: "emptied",
    Action.DUMMY: "replaced",
    Action.KEEP: "kept",
    Action.CLEAN: "cleaned",
    Action.UID: "uid_replaced",
}
_OVERLAY_DATA = 0x3000
_FREE_TEXT_VRS = frozenset({"PN", "LT", "ST", "UT", "UC"})


class Mode(enum.Enum):
    """How attributes the table does not list are treated, inherited down the sequence tree."""

    NORMAL = "normal"  # kept
    CLEAN = "clean"  # inside a C sequence: text scrubbed, dates shifted
    DUMMY = "dummy"  # inside a D sequence: free text and dates replaced by dummies, other text scrubbed


@dataclass
class DatasetAudit:
    """Which attributes each action touched (names with sequence paths only, never values)."""

    actions: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    private_removed: int = 0
    private_kept: int = 0

    def note(self, verb: str, path: str) -> None:
        self.actions[verb].add(path)

    def as_dict(self) -> dict:
        out: dict = {verb: sorted(paths) for verb, paths in sorted(self.actions.items())}
        out["private_removed"] = self.private_removed
        out["private_kept"] = self.private_kept
        return out


@dataclass(frozen=True)
class Plan:
    """Everything the walker needs for one object."""

    profile: ConfidentialityProfile
    options: frozenset[Option]
    ctx: ValueContext
    sop_class_uid: str | None = None
    safe_private: frozenset[tuple[int, str, int]] = frozenset()


def _name(tag: BaseTag) -> str:
    return keyword_for_tag(tag) or f"({tag.group:04X},{tag.element:04X})"


def _private_creator(ds: Dataset, tag: BaseTag) -> str | None:
    creator_tag = Tag(tag.group, tag.element >> 8)
    if tag.element < 0x1000 or creator_tag not in ds:
        return None
    value = ds[creator_tag].value
    return str(value).strip() if value is not None else None


def _dictionary_vr(tag: BaseTag) -> str | None:
    """The VR the data dictionary gives (first of "US or SS" style choices), None for unknown tags."""
    try:
        return dictionary_VR(tag).split(" ")[0]
    except KeyError:
        return None


def iter_identifier_values(ds: Dataset, profile: ConfidentialityProfile, options: frozenset[Option]) -> Iterator[str]:
    """Original text of attributes the profile removes or replaces: the words a clean action must scrub.

    Only table attributes of VR PN, LO, SH and DA are read (and sequences entered), so the other elements are
    never decoded here."""
    for tag in list(ds.keys()):
        tag = Tag(tag)
        if tag.is_private:
            continue
        vr = _dictionary_vr(tag)
        if vr == "SQ":
            for item in ds[tag].value or []:
                yield from iter_identifier_values(item, profile, options)
            continue
        if vr not in ("PN", "LO", "SH", "DA"):
            continue
        rule = profile.lookup(tag)
        if rule is None or rule.action(options, None) in (Action.KEEP, Action.CLEAN):
            continue
        value = ds[tag].value
        if value in (None, ""):
            continue
        for text in (str(v) for v in (value if isinstance(value, MultiValue | list | tuple) else [value])):
            if vr == "PN":
                yield from (part for part in text.replace("=", "^").split("^") if part.strip())
                yield text.replace("^", " ").strip()
            elif vr == "DA" and len(text) == 8 and text.isdigit():
                yield from (text, f"{text[:4]}-{text[4:6]}-{text[6:]}", f"{text[6:]}.{text[4:6]}.{text[:4]}")
            else:
                yield text


def deidentify_dataset(ds: Dataset, plan: Plan) -> DatasetAudit:
    """De-identify `ds` in place (not its file meta); returns the audit of what changed."""
    audit = DatasetAudit()
    _walk(ds, plan, audit, prefix="", mode=Mode.NORMAL, top_level=True)
    return audit


def _walk(ds: Dataset, plan: Plan, audit: DatasetAudit, *, prefix: str, mode: Mode, top_level: bool) -> None:
    needed_creators: set[BaseTag] = set()
    creators: list[BaseTag] = []
    dropped_overlay_groups: set[int] = set()
    for tag in list(ds.keys()):
        tag = Tag(tag)
        if tag.is_private:
            if tag.element >= 0x0010 and tag.element <= 0x00FF:
                creators.append(tag)  # decided after all elements of the block were seen
            elif _keep_private(ds, tag, plan):
                needed_creators.add(Tag(tag.group, tag.element >> 8))
                audit.private_kept += 1
                elem = ds[tag]
                if elem.VR == "SQ":
                    _walk_items(elem, plan, audit, f"{prefix}{_name(tag)}/", mode)
            else:
                del ds[tag]
                audit.private_removed += 1
            continue
        if tag.element == 0x0000 or tag.group in (0x0000, 0x0002):
            # Stale group lengths; command-set elements (group 0000) never belong in a stored object, and file
            # meta elements (group 0002) only in the file meta, which is rebuilt from scratch.
            del ds[tag]
            audit.note(_VERB[Action.REMOVE], prefix + _name(tag))
            continue
        rule = plan.profile.lookup(tag)
        path = prefix + _name(tag)
        if rule is None:
            _untabled(ds, tag, plan, audit, path, mode)
            continue
        attr_type = attribute_type(tag, plan.sop_class_uid) if top_level else None
        action = rule.action(plan.options, attr_type)
        elem = ds[tag]
        if elem.VR == "SQ":
            _sequence_action(ds, elem, action, plan, audit, path, mode)
            continue
        value = new_value(tag, elem.VR, elem.value, action, plan.ctx, fallback=resolve_basic(rule.basic, attr_type))
        if value is REMOVE:
            del ds[tag]
            audit.note(_VERB[Action.REMOVE], path)
            if tag.group & 0xFF00 == 0x6000 and tag.element == _OVERLAY_DATA:
                dropped_overlay_groups.add(tag.group)
            continue
        if action is not Action.KEEP:
            elem.value = value
        pseudonymised = tag in plan.ctx.replacements and action in (Action.EMPTY, Action.DUMMY)
        audit.note("pseudonymised" if pseudonymised else _VERB[action], path)
    for tag in creators:
        if tag in needed_creators:
            continue
        del ds[tag]
        audit.private_removed += 1
    for group in dropped_overlay_groups:
        for tag in list(ds.group_dataset(group).keys()):
            del ds[tag]
            audit.note("removed", prefix + _name(Tag(tag)))


def _untabled(ds: Dataset, tag: BaseTag, plan: Plan, audit: DatasetAudit, path: str, mode: Mode) -> None:
    """Attributes outside the table are kept, except inside D and C sequences (see the module docstring)."""
    # Kept as it is and not even decoded, unless the raw element lacks an explicit VR (implicit-VR data in an
    # explicit transfer syntax happens): pydicom can only write it after decoding it with the dictionary's VR.
    raw_vr = getattr(ds.get_item(tag), "VR", None)
    if mode is Mode.NORMAL and _dictionary_vr(tag) not in (None, "SQ") and raw_vr not in (None, "UN"):
        return
    elem = ds[tag]
    if elem.VR == "SQ":
        _walk_items(elem, plan, audit, path + "/", mode)
        return
    if mode is Mode.NORMAL or elem.value in (None, "", b""):
        return
    if mode is Mode.DUMMY and (elem.VR in _FREE_TEXT_VRS or elem.VR in ("DA", "DT", "TM")):
        # Dates are shifted rather than replaced when the modified-dates option is on.
        action = Action.CLEAN if elem.VR in ("DA", "DT") and plan.ctx.shift_days is not None else Action.DUMMY
        new = new_value(tag, elem.VR, elem.value, action, plan.ctx, fallback=Action.DUMMY)
    elif elem.VR in TEXT_VRS or elem.VR in ("DA", "DT"):
        new = new_value(tag, elem.VR, elem.value, Action.CLEAN, plan.ctx, fallback=Action.KEEP)
    else:
        return
    if new is REMOVE:
        del ds[tag]
        audit.note(_VERB[Action.REMOVE], path)
    elif new != elem.value:
        elem.value = new
        audit.note(_VERB[Action.CLEAN], path)


def _sequence_action(
    ds: Dataset, elem: DataElement, action: Action, plan: Plan, audit: DatasetAudit, path: str, mode: Mode
) -> None:
    if action is Action.REMOVE:
        del ds[elem.tag]
    elif action is Action.EMPTY:
        elem.value = Sequence([])
    else:
        # K and U keep the items and apply the profile inside; D and C also distrust untabled text inside.
        inner = {Action.DUMMY: Mode.DUMMY, Action.CLEAN: Mode.CLEAN}.get(action, mode)
        if mode is Mode.DUMMY:
            inner = Mode.DUMMY  # never relax inside a dummied sequence
        _walk_items(elem, plan, audit, path + "/", inner)
    audit.note(_VERB[action], path)


def _walk_items(elem: DataElement, plan: Plan, audit: DatasetAudit, prefix: str, mode: Mode) -> None:
    for item in elem.value or []:
        _walk(item, plan, audit, prefix=prefix, mode=mode, top_level=False)


def _keep_private(ds: Dataset, tag: BaseTag, plan: Plan) -> bool:
    if Option.RETAIN_SAFE_PRIVATE not in plan.options or not plan.safe_private:
        return False
    creator = _private_creator(ds, tag)
    return creator is not None and (tag.group, creator, tag.element & 0xFF) in plan.safe_private
