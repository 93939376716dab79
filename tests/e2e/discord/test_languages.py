"""Languages through the real discord.py against the loopback Discord: each interaction
is answered in its user's ``locale`` (or their ``/settings language`` choice), results in
a channel speak their requester's language, and the registered commands carry
``description_localizations`` for the shipped languages (names stay English)."""

from __future__ import annotations

from core.i18n import LANGUAGES
from tests.e2e.discord.conftest import GUILD, DiscordHarness
from tests.e2e.discord.support import answered, buttons, result
from tests.fakes.discord_server import FakeDiscord

JOANA = FakeDiscord.user(5151, "Joana")
OLEG = FakeDiscord.user(5252, "Oleg")


async def test_a_pt_br_interaction_is_answered_in_portuguese(
    bot_any_db: DiscordHarness, fake: FakeDiscord
) -> None:
    fake.locales[JOANA["id"]] = "pt-BR"
    help_text = await answered(await fake.slash("help", user=JOANA))
    assert "O **imagebot** cria e edita imagens com IA" in help_text["content"]
    assert "`/imagine prompt:`" in help_text["content"]  # command names stay as typed

    made = await result(await fake.slash("imagine", {"prompt": "um gato"}, user=JOANA))
    assert "1 imagem · 1 crédito · saldo" in made["content"]
    assert set(buttons(made)) >= {"De novo", "Editar", "Variação", "Apagar"}

    balance = await answered(await fake.slash("balance", user=JOANA))
    assert "Saldo: **" in balance["content"] and "pago por uma imagem" in balance["content"]
    assert "capture" not in balance["content"] and "hold" not in balance["content"]


async def test_settings_language_overrides_the_discord_locale(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    fake.locales[OLEG["id"]] = "uk"
    shown = await answered(await fake.slash("settings", user=OLEG))
    assert "Ваші налаштування за замовчуванням" in shown["content"]
    assert "Мова: **Українська**" in shown["content"]

    switched = await answered(await fake.slash("settings", {"language": "de"}, user=OLEG))
    assert "Deine Standardwerte" in switched["content"]
    assert "Sprache: **Deutsch**" in switched["content"]
    help_text = await answered(await fake.slash("help", user=OLEG))
    assert "erstellt und bearbeitet Bilder" in help_text["content"]

    # In a server channel the result speaks its requester's language.
    made = await result(
        await fake.slash("imagine", {"prompt": "ein Hund"}, user=OLEG, guild_id=GUILD)
    )
    assert "1 Bild · 1 Credit · Guthaben" in made["content"]

    back = await answered(await fake.slash("settings", {"language": "default"}, user=OLEG))
    assert "Мова: **Українська**" in back["content"]


async def test_registration_carries_description_localizations(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    [sync] = fake.requests_to("PUT", r"^/applications/\d+/commands$")
    by_name = {c["name"]: c for c in sync.json}
    discord_locales = {"es-ES", "pt-BR", "ru", "uk", "de", "fr", "tr", "id"}
    assert len(LANGUAGES) == len(discord_locales) + 2  # English is the default; no Arabic client
    for name in ("imagine", "help", "balance", "privacy", "delete_my_data", "settings"):
        localized = by_name[name]["description_localizations"]
        assert set(localized) >= discord_locales, (name, set(localized))
        assert not by_name[name].get("name_localizations"), name  # names stay English
    assert by_name["help"]["description_localizations"]["pt-BR"] == "O que o imagebot sabe fazer"
    assert by_name["help"]["description_localizations"]["uk"] == "Що вміє imagebot"
    imagine_prompt = next(o for o in by_name["imagine"]["options"] if o["name"] == "prompt")
    assert imagine_prompt["description_localizations"]["de"].startswith("Was gezeichnet")
    size = next(o for o in by_name["imagine"]["options"] if o["name"] == "size")
    auto = next(c for c in size["choices"] if c["value"] == "auto")
    assert auto["name_localizations"]["fr"] == "auto (le modèle choisit)"
    for option in by_name["imagine"]["options"]:
        assert not option.get("name_localizations"), option["name"]


async def test_new_command_descriptions_are_in_the_catalog_in_every_language(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    [sync] = fake.requests_to("PUT", r"^/applications/\d+/commands$")
    by_name = {c["name"]: c for c in sync.json}
    settings_model = next(o for o in by_name["settings"]["options"] if o["name"] == "model")
    assert settings_model["description"] == "Default model for your images"
    assert settings_model["description_localizations"]["fr"] == "Modèle par défaut pour vos images"
    rate = next(o for o in by_name["server"]["options"] if o["name"] == "rate")
    assert rate["description"].startswith("Requests a minute")
    assert rate["description_localizations"]["tr"].startswith("Tüm üyelerin")
    requests = next(o for o in rate["options"] if o["name"] == "requests")
    assert requests["description_localizations"]["ru"].startswith("Запросов в минуту")
    texts: list[str] = []
    for command in sync.json:  # no catalog key leaks as a description, in any language
        for item in [command, *(command.get("options") or [])]:
            for inner in [item, *(item.get("options") or [])]:
                texts.append(inner.get("description", ""))
                texts += (inner.get("description_localizations") or {}).values()
    assert not [t for t in texts if t.startswith(("opt.", "cmd."))]
    assert all(len(t) <= 100 for t in texts)


async def test_imagine_options_and_size_choices_are_translated(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    [sync] = fake.requests_to("PUT", r"^/applications/\d+/commands$")
    by_name = {c["name"]: c for c in sync.json}
    options = {o["name"]: o for o in by_name["imagine"]["options"]}
    assert options["quality"]["description"] == "Higher quality costs more credits"
    assert options["quality"]["description_localizations"]["es-ES"].startswith("Más calidad")
    assert options["n"]["description_localizations"]["de"].startswith("Wie viele Bilder (1-")
    square = next(c for c in options["size"]["choices"] if c["value"] == "1024x1024")
    assert square["name"] == "square 1024x1024"
    assert square["name_localizations"]["pt-BR"] == "quadrada 1024x1024"
    gallery = by_name["gallery"]
    assert gallery["description_localizations"]["uk"] == "Ваша особиста веб-галерея"
