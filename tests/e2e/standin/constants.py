"""Discord's numbers: limits, ids, flags, types, permissions, intents, opcodes.

Names follow Discord's documentation; values are Discord's (or, for the ids,
the stand-in's own fixed snowflakes)."""

from __future__ import annotations

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
TOKEN_LIFETIME_S = 15 * 60  # interaction tokens
ACK_DEADLINE_S = 3.0  # first answer to an interaction
HEARTBEAT_INTERVAL_MS = 41_250
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024  # per file, for bots
MAX_CONTENT_CHARS = 2000
MAX_ACTION_ROWS = 5
MAX_ROW_COMPONENTS = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_MENTION_IDS = 100  # allowed_mentions.users / .roles
MAX_NONCE_CHARS = 25
NONCE_WINDOW_S = 5 * 60  # "the past few minutes" in which enforce_nonce finds an earlier message
RATE_LIMIT = 50  # requests per bucket and window: generous, so only injected 429s slow tests
RATE_WINDOW_S = 1.0
INVALID_REQUEST_LIMIT = 10_000  # 401/403/429 answers per IP in INVALID_REQUEST_WINDOW_S before Discord bans it
INVALID_REQUEST_WINDOW_S = 10 * 60
RESUME_BUFFER_FRAMES = 1000  # dispatches kept per session for RESUME
DEFAULT_WAIT_S = 10.0

BOT_TOKEN = "standin-bot-token"
APPLICATION_ID = 1_300_000_000_000_000_001  # the bot user has the application's id, as on Discord
GUILD_ID = 1_300_000_000_000_000_002
CHANNEL_ID = 1_300_000_000_000_000_003
MEMBER_ID = 1_300_000_000_000_000_004
BOT_ROLE_ID = 1_300_000_000_000_000_005

# Message flags, types and gateway intents used below.
SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
CLIENT_FLAGS = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
DEFAULT_MESSAGE = 0
CHAT_INPUT_COMMAND_MESSAGE = 20
GUILD_TEXT, DM, GUILD_FORUM = 0, 1, 15  # channel types
ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD = 10, 11, 12
THREAD_TYPES = (ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD)
ACTION_ROW, BUTTON = 1, 2  # component types
LINK_BUTTON, PREMIUM_BUTTON = 5, 6  # the button styles that carry no custom_id
NORMAL_REACTION = 0  # reaction type (1: a super reaction)
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13

# Interaction context types.
CONTEXT_GUILD, CONTEXT_BOT_DM = 0, 1

# Interaction and callback types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Permissions.
MANAGE_GUILD = 1 << 5  # Manage Server: what makes a member a Daydream admin
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38  # what posting in a thread or forum post needs, instead of SEND_MESSAGES
TEXT_PERMISSIONS = (
    ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
# What an app may do in its DM with a user (Discord's app_permissions there).
DM_APP_PERMISSIONS = ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE | USE_EXTERNAL_EMOJIS

# Gateway close codes (4000 and 4009 are resumable; 4004 is not).
CLOSE_UNKNOWN_ERROR = 4000
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005

# Option types Discord's client converts before sending.
OPTION_STRING, OPTION_INTEGER, OPTION_BOOLEAN, OPTION_NUMBER = 3, 4, 5, 10
OPTION_SUBCOMMAND, OPTION_GROUP = 1, 2
OPTION_ATTACHMENT = 11
# Members' uploads (attachment options): Discord's client refuses a larger file than the member may send.
MEMBER_UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024
# Select menus and modals.
STRING_SELECT, TEXT_INPUT, LABEL = 3, 4, 18
MAX_SELECT_OPTIONS = 25
MAX_MODAL_TITLE, MAX_INPUT_LABEL, MAX_MODAL_ROWS = 45, 45, 5
