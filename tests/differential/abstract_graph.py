"""A small in-memory graph with what the demo graph lacks: interfaces, unions, custom scalars.

``Node`` and ``Character`` are interfaces (``Human``, ``Droid`` and ``Wookiee`` implement
both, ``Starship`` only ``Node``); ``SearchResult`` and ``Crew`` are unions. Records come
from one fake service, ``roster``, through declared edges (``BatchEdge``), so the planned
path batches them as it batches the demo's; other fields are sync or async resolvers with
arguments, enums and a custom scalar.

Errors and nulls are injected deterministically: each request's ``RosterUpstream``
carries a ``salt``, and a field of a character fails (raises a ``GraphError``, raises an
unexpected exception, returns null for a non-null type or a string for an ``Int``) when a
hash of the salt, the field and the id says so. ``down`` makes every call to the roster
fail, as a stopped service does. Field rules (``requires_scopes``, ``authenticated``,
``owner_or_admin``) read the context's ``caller``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import zlib
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, NewType, cast

import strawberry
from starlette.responses import Response
from strawberry.schema.config import StrawberryConfig

from switchyard import (
    BadUserInput,
    BatchEdge,
    Caller,
    Forbidden,
    RequestContext,
    Service,
    authenticated,
    decimal_id,
    owner_or_admin,
    requires_scopes,
)
from switchyard.deadline import Deadline
from switchyard.upstream.call import CallScope
from switchyard.upstream.errors import UpstreamUnavailable
from switchyard.upstream.upstream import Upstream

ROSTER = Service("roster")
REGISTRY = Service("registry")
"""A second fake service (droids' owners): one may fail while the other answers."""
DATA_SEED = 1977
CHARACTER_COUNT = 24
STARSHIP_IDS = tuple(str(n) for n in range(101, 107))
MISSING_ID = "999"
"""An id the roster does not know: null without an error."""

SECRETS_SCOPE = "roster:secrets"
ADMIN_SCOPE = "roster:admin"

CALLERS: Mapping[str, Caller] = {
    "anonymous": Caller(client_id="anonymous"),
    "partner": Caller(
        client_id="partner", scopes=frozenset({SECRETS_SCOPE}), tier="pro", method="api_key"
    ),
    "user": Caller(client_id="web", subject="4", tier="free", method="jwt"),
    "admin": Caller(
        client_id="ops",
        scopes=frozenset({SECRETS_SCOPE, ADMIN_SCOPE, "admin"}),
        tier="service",
        method="api_key",
        admin=True,
    ),
}
"""Who asks: field rules answer each differently."""


class RosterUpstream:
    """The fake roster service of one request: which faults it injects.

    ``salt`` 0 injects none; otherwise a field fails for about one character in six.
    ``down`` fails every call, as a stopped service.
    """

    def __init__(self, *, salt: int = 0, down: bool = False) -> None:
        self.salt = salt
        self.down = down
        self.calls = 0

    def fails(self, what: str, key: str) -> bool:
        if self.salt == 0:
            return False
        return zlib.crc32(f"{self.salt}:{what}:{key}".encode()) % 6 == 0


def roster_of(info: strawberry.Info) -> RosterUpstream:
    context: RequestContext = info.context
    return cast(RosterUpstream, context.upstreams[ROSTER.name])


def new_context(
    caller: Caller, roster: RosterUpstream, registry: RosterUpstream | None = None
) -> RequestContext:
    """A fresh request context, as the gateway makes one, over the fake services."""
    registry = registry or RosterUpstream(salt=roster.salt)
    return RequestContext(
        request_id="differential",
        deadline=Deadline.after(60.0),
        upstreams={ROSTER.name: cast(Upstream, roster), REGISTRY.name: cast(Upstream, registry)},
        response=Response(),
        caller=caller,
    )


# --- the data ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CharacterRecord:
    id: str
    kind: str
    name: str
    episodes: tuple[str, ...]
    friend_ids: tuple[str, ...]
    best_friend_id: str | None
    born: int | None
    ship_ids: tuple[str, ...]
    owner_id: str | None


NAMES = (
    "Luke", "Leia", "Han", "Chewbacca", "Artoo", "Threepio", "Lando", "Wicket", "Tarfful",
    "Padme", "Anakin", "Obi-Wan", "Qui-Gon", "Mace", "Yoda", "Rey", "Finn", "Poe",
    "Bee-Eight", "Kes", "Jyn", "Cassian", "Kay-Two", "Bodhi",
)  # fmt: skip
KINDS = ("human", "droid", "wookiee")
PLANETS = ("Tatooine", "Alderaan", "Corellia", "Naboo", None)
FUNCTIONS = ("Astromech", "Protocol", "Security", "Pilot")
FURS = ("brown", "grey", "auburn")
SHIP_NAMES = ("Falcon", "X-Wing", "Ghost", "Home One", "Tantive", "Slave I")


def _characters() -> dict[str, CharacterRecord]:
    rng = random.Random(DATA_SEED)
    ids = [str(n) for n in range(1, CHARACTER_COUNT + 1)]
    humans = [i for i in ids if int(i) % 3 == 1]
    records: dict[str, CharacterRecord] = {}
    for number, id_ in enumerate(ids, start=1):
        others = [i for i in ids if i != id_]
        friends = rng.sample(others, rng.randint(0, 4))
        best = rng.choice([*friends, MISSING_ID, "x7", None]) if rng.random() < 0.8 else None
        kind = KINDS[number % 3]
        records[id_] = CharacterRecord(
            id=id_,
            kind=kind,
            name=NAMES[number - 1],
            episodes=tuple(sorted(rng.sample(["NEWHOPE", "EMPIRE", "JEDI"], rng.randint(0, 3)))),
            friend_ids=tuple(friends),
            best_friend_id=best,
            born=None if number % 5 == 0 else 41000 + number * 37,
            ship_ids=tuple(rng.sample([*STARSHIP_IDS, "998"], rng.randint(0, 3))),
            owner_id=rng.choice(humans) if kind == "droid" and number % 4 else None,
        )
    return records


CHARACTERS = _characters()
PILOTS: dict[str, tuple[str, ...]] = {
    ship: tuple(sorted((r.id for r in CHARACTERS.values() if ship in r.ship_ids), key=int))
    + (("998",) if ship == "104" else ())
    for ship in STARSHIP_IDS
}


# --- the types --------------------------------------------------------------------------


@strawberry.enum
class Episode(Enum):
    NEWHOPE = "NEWHOPE"
    EMPIRE = "EMPIRE"
    JEDI = "JEDI"


@strawberry.enum
class LengthUnit(Enum):
    METER = "METER"
    FOOT = "FOOT"


Stardate = NewType("Stardate", int)
STARDATE = strawberry.scalar(
    name="Stardate",
    description='A stardate: "SD41254".',
    serialize=lambda value: f"SD{value:05d}",
    parse_value=lambda value: Stardate(int(str(value).removeprefix("SD"))),
)


def _length(meters: float, unit: LengthUnit) -> float:
    return round(meters * 3.28084, 2) if unit is LengthUnit.FOOT else round(meters, 2)


async def characters_by_id(
    upstream: Upstream, ids: list[str], scope: CallScope
) -> dict[str, CharacterRecord]:
    roster = cast(RosterUpstream, upstream)
    roster.calls += 1
    await asyncio.sleep(0)  # an answer arrives later, as a service's does
    if roster.down:
        raise UpstreamUnavailable("roster", "characters", "injected: the service is down")
    return {id_: CHARACTERS[id_] for id_ in ids if id_ in CHARACTERS}


def character_from_record(record: CharacterRecord) -> Character:
    common: dict[str, Any] = {
        "id": strawberry.ID(record.id),
        "name": record.name,
        "appears_in": [Episode(e) for e in record.episodes],
        "born": record.born,
        "friend_ids": record.friend_ids,
        "best_friend_id": record.best_friend_id,
    }
    if record.kind == "human":
        return Human(
            **common,
            home_planet=PLANETS[int(record.id) % len(PLANETS)],
            ship_ids=record.ship_ids,
        )
    if record.kind == "droid":
        return Droid(
            **common,
            primary_function=FUNCTIONS[int(record.id) % len(FUNCTIONS)],
            owner_id=record.owner_id,
        )
    return Wookiee(**common, fur=FURS[int(record.id) % len(FURS)])


def human_from_record(record: CharacterRecord) -> Human | None:
    character = character_from_record(record)
    return character if isinstance(character, Human) else None


characters_edge: BatchEdge[str, Character] = BatchEdge(
    "characters",
    service=ROSTER,
    fetch=characters_by_id,
    convert=character_from_record,
    parse_key=decimal_id,
)
humans_edge: BatchEdge[str, Human | None] = BatchEdge(
    "humans",
    service=REGISTRY,
    fetch=characters_by_id,
    convert=human_from_record,
    max_batch=3,
    parse_key=decimal_id,
)


def own_id(character: Character) -> str:
    return str(character.id)


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.interface
class Character(Node):
    id: strawberry.ID
    name: str
    appears_in: list[Episode]
    born: Stardate | None
    friend_ids: strawberry.Private[tuple[str, ...]]
    best_friend_id: strawberry.Private[str | None]

    best_friend: Character | None = characters_edge.field(key=lambda c: c.best_friend_id)

    @strawberry.field
    def nickname(self) -> str | None:
        return None if int(self.id) % 4 == 0 else f"{self.name[:3].lower()}{self.id}"

    @strawberry.field
    def friend_count(self) -> int:
        return len(self.friend_ids)

    @strawberry.field
    async def friends(self, info: strawberry.Info, first: int = 3) -> list[Character]:
        """Non-null items: a friend the roster cannot give fails the whole list."""
        if first < 0:
            raise BadUserInput(f"first must not be negative, got {first}")
        loaded = await asyncio.gather(
            *(characters_edge.load(info.context, i) for i in self.friend_ids[:first])
        )
        return [friend for friend in loaded if friend is not None]

    @strawberry.field
    def rank(self, info: strawberry.Info) -> int:
        """Non-null and sync: a failure nulls the nearest nullable parent."""
        if roster_of(info).fails("rank", self.id):
            raise BadUserInput(f"No rank for {self.name}.")
        return int(self.id) * 7 % 10

    @strawberry.field
    async def mood(self, info: strawberry.Info) -> str | None:
        """Async; fails with an unexpected error (the client sees an internal error)."""
        await asyncio.sleep(0)
        if roster_of(info).fails("mood", self.id):
            raise RuntimeError(f"mood sensor of {self.id} broke")
        return None if int(self.id) % 3 == 0 else ("calm", "grumpy", "eager")[int(self.id) % 3]

    @strawberry.field
    def level(self, info: strawberry.Info) -> int | None:
        """Sometimes a value an ``Int`` cannot represent: an error when serialized."""
        value: Any = "high" if roster_of(info).fails("level", self.id) else int(self.id) % 9
        return cast(int | None, value)

    @strawberry.field
    def title(self, info: strawberry.Info) -> str:
        """Non-null, sometimes null: graphql's own error, nulling the parent."""
        value: Any = None if roster_of(info).fails("title", self.id) else f"{self.name} the Bold"
        return cast(str, value)

    @strawberry.field(extensions=[requires_scopes([[SECRETS_SCOPE]])])  # type: ignore[untyped-decorator]
    def secret(self) -> str | None:
        return f"{self.name} fears {len(self.friend_ids)} things"

    @strawberry.field(extensions=[owner_or_admin(own_id)])  # type: ignore[untyped-decorator]
    async def diary(self, info: strawberry.Info) -> str | None:
        await asyncio.sleep(0)
        return f"Dear diary, {self.name} here."


@strawberry.type
class Starship(Node):
    id: strawberry.ID
    name: str

    @strawberry.field
    def length(self, unit: LengthUnit = LengthUnit.METER) -> float:
        return _length(10.5 * (int(self.id) - 99), unit)

    @strawberry.field
    async def pilots(self, info: strawberry.Info) -> list[Character] | None:
        """Non-null items: a pilot the roster does not know nulls the whole list."""
        loaded = await asyncio.gather(
            *(characters_edge.load(info.context, i) for i in PILOTS[self.id])
        )
        return cast(list[Character], loaded)

    @strawberry.field
    async def crew(self, info: strawberry.Info, first: int = 2) -> list[Crew | None]:
        """A union's members, nullable items: a pilot not found is a null item."""
        loaded = await asyncio.gather(
            *(characters_edge.load(info.context, i) for i in PILOTS[self.id][:first])
        )
        return [c if isinstance(c, Droid | Wookiee) or c is None else None for c in loaded]


def starship(id_: str) -> Starship | None:
    if id_ not in STARSHIP_IDS:
        return None
    return Starship(id=strawberry.ID(id_), name=SHIP_NAMES[int(id_) - 101])


@strawberry.type
class Human(Character):
    home_planet: str | None
    ship_ids: strawberry.Private[tuple[str, ...]]

    @strawberry.field
    def height(self, unit: LengthUnit = LengthUnit.METER) -> float:
        return _length(1.5 + int(self.id) % 5 * 0.1, unit)

    @strawberry.field
    def starships(self) -> list[Starship | None]:
        return [starship(i) for i in self.ship_ids]

    @strawberry.field
    async def mass(self, info: strawberry.Info) -> float | None:
        if roster_of(info).fails("mass", self.id):
            raise Forbidden(f"The mass of {self.name} is classified.")
        return 60.0 + int(self.id)


@strawberry.type
class Droid(Character):
    primary_function: str
    owner_id: strawberry.Private[str | None]

    owner: Human | None = humans_edge.field(key=lambda droid: droid.owner_id)

    @strawberry.field(extensions=[authenticated()])  # type: ignore[untyped-decorator]
    def serial(self) -> str | None:
        return f"SN-{int(self.id):04d}"


@strawberry.type
class Wookiee(Character):
    fur: str

    @strawberry.field
    def strength(self, info: strawberry.Info) -> int:
        if roster_of(info).fails("strength", self.id):
            raise Forbidden(f"{self.name} will not be measured.")
        return 100 + int(self.id)


SearchResult = Annotated[Human | Droid | Starship, strawberry.union("SearchResult")]
Crew = Annotated[Droid | Wookiee, strawberry.union("Crew")]


@strawberry.type
class Viewer:
    client_id: str
    scopes: list[str]
    subject: strawberry.Private[str | None]

    @strawberry.field
    async def me(self, info: strawberry.Info) -> Character | None:
        if self.subject is None:
            return None
        return await characters_edge.load(info.context, self.subject)


HEROES = {None: "4", Episode.NEWHOPE: "1", Episode.EMPIRE: "2", Episode.JEDI: "3"}


@strawberry.type
class Query:
    character: Character | None = characters_edge.lookup_field()

    @strawberry.field
    async def hero(self, info: strawberry.Info, episode: Episode | None = None) -> Character:
        """Non-null at the root: its failure nulls ``data``."""
        hero = await characters_edge.load(info.context, HEROES[episode])
        assert hero is not None
        return hero

    @strawberry.field
    async def characters(
        self, info: strawberry.Info, ids: list[strawberry.ID]
    ) -> list[Character | None] | None:
        return await asyncio.gather(*(characters_edge.load(info.context, i) for i in ids))

    @strawberry.field
    def node(self, id: strawberry.ID) -> Node | None:
        """Sync, no edge: a character or a starship straight from the data."""
        key = decimal_id(id)
        record = CHARACTERS.get(key)
        return character_from_record(record) if record is not None else starship(key)

    @strawberry.field
    def search(self, text: str, first: int = 5) -> list[SearchResult] | None:
        if first < 0:
            raise BadUserInput(f"first must not be negative, got {first}")
        needle = text.lower()
        found: list[Human | Droid | Starship] = []
        for record in CHARACTERS.values():
            character = character_from_record(record)
            if needle in record.name.lower() and isinstance(character, Human | Droid):
                found.append(character)
        for id_ in STARSHIP_IDS:
            ship = starship(id_)
            if ship is not None and needle in ship.name.lower():
                found.append(ship)
        return found[:first]

    @strawberry.field
    async def starships(self, first: int | None = None) -> list[Starship]:
        ships = [s for s in map(starship, STARSHIP_IDS) if s is not None]
        return ships if first is None else ships[: max(first, 0)]

    @strawberry.field(extensions=[authenticated()])  # type: ignore[untyped-decorator]
    def viewer(self, info: strawberry.Info) -> Viewer | None:
        caller: Caller = info.context.caller
        return Viewer(
            client_id=caller.client_id, scopes=sorted(caller.scopes), subject=caller.subject
        )

    @strawberry.field
    def now(self) -> Stardate:
        return Stardate(41254)

    @strawberry.field
    def greeting(self, name: str = "world", excited: bool = False) -> str:
        return f"Hello, {name}{'!' if excited else '.'}"

    @strawberry.field(extensions=[requires_scopes([[ADMIN_SCOPE]])])  # type: ignore[untyped-decorator]
    async def roster_size(self) -> int | None:
        return len(CHARACTERS)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def rename(self, info: strawberry.Info, id: strawberry.ID, name: str) -> Character | None:
        """A pure mutation: the renamed character, nothing stored."""
        if not name.strip():
            raise BadUserInput("name must not be empty")
        character = await characters_edge.load(info.context, id)
        return None if character is None else dataclasses.replace(character, name=name)


def _quiet(errors: Any, execution_context: Any = None) -> None:
    """Field errors are the subject of the comparison, not of the log."""


def build_schema(execution_context_class: Any = None) -> strawberry.Schema:
    """The abstract graph, executed by ``execution_context_class`` (None: the standard one)."""
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[Human, Droid, Wookiee, Starship],
        execution_context_class=execution_context_class,
        config=StrawberryConfig(scalar_map={Stardate: STARDATE}),
    )
    schema.process_errors = _quiet  # type: ignore[method-assign]
    return schema
