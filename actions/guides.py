"""Step-by-step guides: start (or resume), navigate, report problems, finish.

State in the conversation: the slots `active_guide` (guide id; rules condition on it) and
`guide_step` (1-based). Progress is also saved in the app database (bot.guides.service), so
a citizen who comes back days later is offered to resume where they stopped.
"""

from __future__ import annotations

import abc
import asyncio
import re
import unicodedata
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswer
from actions.common import send
from actions.senders import channel_user
from bot.guides import service
from bot.knowledge.answers import Reply, intent_payload, menu_buttons
from bot.knowledge.kb import Guide, KnowledgeBase, fill
from bot.services import get_services
from bot.subscriptions.service import add_tag

Domain = dict[str, Any]
ACTIVE, STEP = "active_guide", "guide_step"
# "đã kích hoạt xong" outside a guide is a self-report of VNeID level 2.
SELF_REPORT_GUIDE = "vneid_kich_hoat_muc2"
_NUMBER_WORDS = {
    "mot": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5, "sau": 6, "bay": 7, "tam": 8, "chin": 9,
    "muoi": 10,
}  # fmt: skip
# "xong" mid-guide means the step; these words mean the whole task is done.
_WHOLE_TASK_DONE = re.compile(r"kich hoat|muc 2|thanh cong|hoan (?:thanh|tat)|xong (?:het|ca|xuoi)")
_STEP_IN_TEXT = re.compile(r"\bbuoc\s+(?:thu\s+)?(\d{1,2}|[a-z]+)\b")


def _texts(kb: KnowledgeBase) -> dict[str, Any]:
    return kb.messages["guides"]


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(c for c in text if not unicodedata.combining(c))


def guide_for(kb: KnowledgeBase, procedure: str | None) -> Guide | None:
    """The guide for a catalog procedure id (or a guide id)."""
    if not procedure:
        return None
    if procedure in kb.guides:
        return kb.guides[procedure]
    entry = kb.procedures.get(procedure)
    if entry and entry.guide in kb.guides:
        return kb.guides[entry.guide]
    return next((g for g in kb.guides.values() if g.topic == procedure), None)


# Words that ask for a guide rather than name one ("hướng dẫn từng bước ... giúp tôi").
_REQUEST_WORDS = frozenset((
    "huong", "dan", "tung", "buoc", "mot", "lam", "cho", "toi", "tui", "minh", "bac", "chau", "em",
    "e", "a", "anh", "chi", "giup", "voi", "vs", "di", "nhe", "nha", "the", "nao", "ntn", "cach",
    "tren", "vao", "va", "hoac", "cua", "de", "duoc", "dc", "khong", "ko", "k", "bat", "dau",
    "cam", "tay", "viec",
))  # fmt: skip


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", _fold(text)) if w not in _REQUEST_WORDS}


def guide_named_in(kb: KnowledgeBase, text: str) -> Guide | None:
    """The guide whose title (or its procedure's title) shares clearly the most words with the text.

    A fallback for when the NLU found no `procedure` entity in a start_guide message.
    """
    words = _words(text)
    if not words:
        return None
    best: dict[str, int] = {}  # guide id ("" for none) → best score of a procedure leading to it
    for procedure in kb.procedures.values():  # all of them: a procedure without a guide can win
        guide = guide_for(kb, procedure.id)
        names = _words(procedure.title) | (_words(guide.title) if guide else set())
        key = guide.id if guide else ""
        best[key] = max(best.get(key, 0), len(words & names))
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
    (winner, score), runner_up = ranked[0], ranked[1][1] if len(ranked) > 1 else 0
    return kb.guides[winner] if winner and score >= 2 and score > runner_up else None


def start_payload(guide: Guide) -> str:
    return intent_payload("start_guide", procedure=guide.topic)


def step_buttons(kb: KnowledgeBase, guide: Guide, step: int, *, problem: bool = True) -> list[dict[str, str]]:
    labels = _texts(kb)["buttons"]
    last = step >= len(guide.steps)
    buttons = [
        {"title": labels["back"], "payload": "/guide_back"},
        {"title": labels["finish" if last else "next"], "payload": "/guide_next"},
        {"title": labels["repeat"], "payload": "/guide_repeat"},
    ]
    if problem:
        buttons.append({"title": labels["problem"], "payload": "/guide_problem"})
    return buttons


def step_reply(kb: KnowledgeBase, guide: Guide, step: int) -> Reply:
    ward = get_services().ward
    text = fill(guide.steps[step - 1].text, ward.placeholders()).strip()
    line = fill(_texts(kb)["step"], {"step": str(step), "total": str(len(guide.steps)), "text": text})
    return Reply(line, step_buttons(kb, guide, step))


def _message(kb: KnowledgeBase, key: str, **values: str) -> str:
    ward = get_services().ward
    return fill(str(_texts(kb)[key]), {**ward.placeholders(), **values}).strip()


def _progress_values(guide: Guide, step: int) -> dict[str, str]:
    return {"title": guide.title, "step": str(step), "total": str(len(guide.steps))}


def picker_buttons(kb: KnowledgeBase) -> list[dict[str, str]]:
    return [{"title": g.title, "payload": start_payload(g)} for g in kb.guides.values()]


async def resume_offer(tracker: Tracker) -> Reply | None:
    """ "You were at step 3 of ..." with a resume button, when a guide is unfinished."""
    kb = get_services().kb
    unfinished = await _unfinished(tracker, kb)
    if not unfinished:
        return None
    guide, progress = unfinished[0]
    text = _message(kb, "resume_offer", **_progress_values(guide, progress.step))
    return Reply(text, [{"title": _texts(kb)["buttons"]["resume"], "payload": start_payload(guide)}])


async def _unfinished(tracker: Tracker, kb: KnowledgeBase) -> list[tuple[Guide, service.Progress]]:
    channel, external_id = channel_user(tracker)
    rows = await asyncio.to_thread(service.unfinished, get_services().db, channel, external_id)
    return [(kb.guides[p.guide_id], p) for p in rows if p.guide_id in kb.guides]


async def _save(tracker: Tracker, guide: Guide, step: int) -> None:
    channel, external_id = channel_user(tracker)
    await asyncio.to_thread(
        service.save_step, get_services().db, channel, external_id, guide.id, step, len(guide.steps)
    )


def _entity(tracker: Tracker, name: str) -> str | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name and entity.get("value") not in (None, ""):
            return str(entity["value"])
    return None


def _to_number(value: str | None) -> int | None:
    if value is None:
        return None
    value = _fold(value).strip()
    if value.isdigit():
        return int(value)
    return _NUMBER_WORDS.get(value)


def requested_step(tracker: Tracker) -> int | None:
    """The step number asked for ("bước 3"): the `step` entity, else read from the text."""
    number = _to_number(_entity(tracker, "step"))
    if number is None:
        match = _STEP_IN_TEXT.search(_fold(tracker.latest_message.get("text") or ""))
        number = _to_number(match.group(1)) if match else None
    return number


class ActionStartGuide(Action):
    """start_guide: the named procedure's guide (resumed if unfinished), else a picker."""

    def name(self) -> str:
        return "action_start_guide"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        kb = services.kb
        procedure = _entity(tracker, "procedure")
        guide = guide_for(kb, procedure)
        if procedure is None:
            guide = guide_named_in(kb, tracker.latest_message.get("text") or "")
        if guide is None:
            replies = [await self._picker(tracker, kb, named=procedure is not None)]
            send(dispatcher, tracker, "guide.start", *replies)
            return []
        channel, external_id = channel_user(tracker)
        progress = await asyncio.to_thread(service.get_progress, services.db, channel, external_id, guide.id)
        if progress and progress.in_progress and 1 < progress.step <= len(guide.steps):
            step = progress.step
            restart = {"title": _texts(kb)["buttons"]["restart"], "payload": '/guide_next{"step": "1"}'}
            replies = [
                Reply(_message(kb, "resuming", **_progress_values(guide, step)), [restart]),
                step_reply(kb, guide, step),
            ]
        else:
            step = 1
            intro = f"{guide.title.upper()}\n\n{fill(guide.intro, services.ward.placeholders()).strip()}"
            replies = [Reply(intro), step_reply(kb, guide, step)]
        await _save(tracker, guide, step)
        send(dispatcher, tracker, "guide.start", *replies)
        return [SlotSet(ACTIVE, guide.id), SlotSet(STEP, step)]

    async def _picker(self, tracker: Tracker, kb: KnowledgeBase, *, named: bool) -> Reply:
        lines = [_message(kb, "no_guide" if named else "picker")]
        buttons = []
        unfinished = await _unfinished(tracker, kb)
        if unfinished:
            guide, progress = unfinished[0]
            lines.insert(0, _message(kb, "unfinished", **_progress_values(guide, progress.step)))
            buttons.append({"title": _texts(kb)["buttons"]["resume"], "payload": start_payload(guide)})
        buttons += picker_buttons(kb)
        return Reply("\n".join(lines), buttons)


def _current_step(tracker: Tracker, guide: Guide) -> int:
    try:
        step = int(float(tracker.get_slot(STEP) or 1))
    except (TypeError, ValueError):
        step = 1
    return min(max(step, 1), len(guide.steps))


class _GuideAction(Action, abc.ABC):
    """An action on the running guide (rules run these only while `active_guide` is set)."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        kb = get_services().kb
        guide = kb.guides.get(tracker.get_slot(ACTIVE) or "")
        if guide is None:  # the guide was removed from faq/ meanwhile
            send(dispatcher, tracker, "help", Reply(kb.message("flow_without_context"), menu_buttons(kb)))
            return [SlotSet(ACTIVE, None), SlotSet(STEP, None)]
        return await self.act(dispatcher, tracker, kb, guide, _current_step(tracker, guide))

    @abc.abstractmethod
    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, kb: KnowledgeBase, guide: Guide, step: int
    ) -> list[EventType]: ...

    async def show(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        kb: KnowledgeBase,
        guide: Guide,
        step: int,
        *before: Reply,
    ) -> list[EventType]:
        await _save(tracker, guide, step)
        send(dispatcher, tracker, guide.topic, *before, step_reply(kb, guide, step))
        return [SlotSet(STEP, step)]


async def finish(
    dispatcher: CollectingDispatcher, tracker: Tracker, kb: KnowledgeBase, guide: Guide
) -> list[EventType]:
    """Record the completion (and its tag), show the guide's closing text."""
    channel, external_id = channel_user(tracker)
    await asyncio.to_thread(
        service.complete,
        get_services().db,
        channel,
        external_id,
        guide.id,
        len(guide.steps),
        guide.completion_tag,
    )
    labels = _texts(kb)["buttons"]
    done = fill(guide.done, get_services().ward.placeholders()).strip()
    text = f"{_message(kb, 'done_title', title=guide.title)}\n\n{done}"
    buttons = [
        {"title": labels["other_guides"], "payload": "/start_guide"},
        {"title": labels["subscribe"], "payload": "/subscribe"},
    ]
    send(dispatcher, tracker, guide.topic, Reply(text, buttons))
    return [SlotSet(ACTIVE, None), SlotSet(STEP, None)]


class ActionGuideNext(_GuideAction):
    """ "tiếp" (or "có"), "bước 3"; after the last step, "tiếp"/"xong" finishes the guide."""

    def name(self) -> str:
        return "action_guide_next"

    async def act(self, dispatcher, tracker, kb, guide, step):
        total = len(guide.steps)
        wanted = requested_step(tracker) if tracker.get_intent_of_latest_message() == "guide_next" else None
        if wanted is not None:
            if 1 <= wanted <= total:
                return await self.show(dispatcher, tracker, kb, guide, wanted)
            note = Reply(_message(kb, "no_such_step", total=str(total)))
            return await self.show(dispatcher, tracker, kb, guide, step, note)
        if step >= total:
            return await finish(dispatcher, tracker, kb, guide)
        return await self.show(dispatcher, tracker, kb, guide, step + 1)


class ActionGuideBack(_GuideAction):
    def name(self) -> str:
        return "action_guide_back"

    async def act(self, dispatcher, tracker, kb, guide, step):
        if step <= 1:
            return await self.show(dispatcher, tracker, kb, guide, 1, Reply(_message(kb, "first_step")))
        return await self.show(dispatcher, tracker, kb, guide, step - 1)


class ActionGuideRepeat(_GuideAction):
    """ "nhắc lại" (or "không"): the current step again; also the "Tiếp tục hướng dẫn" button."""

    def name(self) -> str:
        return "action_guide_repeat"

    async def act(self, dispatcher, tracker, kb, guide, step):
        return await self.show(dispatcher, tracker, kb, guide, step)


class ActionGuideProblem(_GuideAction):
    """ "Tôi bị lỗi ở bước này": the step's common problems and their fixes."""

    def name(self) -> str:
        return "action_guide_problem"

    async def act(self, dispatcher, tracker, kb, guide, step):
        problems = fill(guide.steps[step - 1].problems, get_services().ward.placeholders()).strip()
        text = "\n".join(
            [_message(kb, "problems", step=str(step)), problems, "", _message(kb, "problems_more")]
        )
        send(dispatcher, tracker, guide.topic, Reply(text, step_buttons(kb, guide, step, problem=False)))
        return []


class ActionGuideStop(_GuideAction):
    """ "thôi": leave the guide; the progress stays, to be offered back later."""

    def name(self) -> str:
        return "action_guide_stop"

    async def act(self, dispatcher, tracker, kb, guide, step):
        text = _message(kb, "stopped", **_progress_values(guide, step))
        send(dispatcher, tracker, guide.topic, Reply(text, menu_buttons(kb)))
        return [SlotSet(ACTIVE, None), SlotSet(STEP, None)]


class ActionReportDone(Action):
    """ "đã kích hoạt xong": finishes the running guide; outside a guide, records VNeID level 2."""

    def name(self) -> str:
        return "action_report_done"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        services = get_services()
        kb = services.kb
        guide = kb.guides.get(tracker.get_slot(ACTIVE) or "")
        if guide is not None:
            step = _current_step(tracker, guide)
            if step >= len(guide.steps) or _WHOLE_TASK_DONE.search(
                _fold(tracker.latest_message.get("text") or "")
            ):
                return await finish(dispatcher, tracker, kb, guide)
            # "xong rồi" in the middle of a guide: this step is done, show the next one
            return await ActionGuideNext().show(dispatcher, tracker, kb, guide, step + 1)
        vneid = kb.guides.get(SELF_REPORT_GUIDE)
        channel, external_id = channel_user(tracker)
        if vneid is not None:
            progress = await asyncio.to_thread(
                service.get_progress, services.db, channel, external_id, vneid.id
            )
            if progress and progress.in_progress:
                await asyncio.to_thread(
                    service.complete, services.db, channel, external_id, vneid.id, len(vneid.steps)
                )
            tag = vneid.completion_tag or "vneid_muc2"
            await asyncio.to_thread(add_tag, services.db, channel, external_id, tag, "self_report")
        labels = _texts(kb)["buttons"]
        buttons = [
            {"title": labels["other_guides"], "payload": "/start_guide"},
            {"title": labels["subscribe"], "payload": "/subscribe"},
        ]
        topic = vneid.topic if vneid else "vneid.kich_hoat_muc2"
        send(dispatcher, tracker, topic, Reply(_message(kb, "reported_done"), buttons))
        return []


class ActionAnswerInGuide(ActionAnswer):
    """A knowledge-base question in the middle of a guide: answer it, then offer the guide back."""

    def name(self) -> str:
        return "action_answer_in_guide"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain
    ) -> list[EventType]:
        topic, replies, events = self.compose(tracker)
        kb = get_services().kb
        guide = kb.guides.get(tracker.get_slot(ACTIVE) or "")
        if guide is not None:
            step = _current_step(tracker, guide)
            text = _message(kb, "interrupted", **_progress_values(guide, step))
            labels = _texts(kb)["buttons"]
            replies.append(Reply(text, [{"title": labels["resume"], "payload": "/guide_repeat"}]))
        send(dispatcher, tracker, topic, *replies)
        return events
