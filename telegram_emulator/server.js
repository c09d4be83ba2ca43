'use strict';

// Telegram Bot API emulator for local development and tests.
//
// telegram-test-api (used as a library) keeps the messages and serves the client-side routes
// a test or a developer uses to play the user: POST /sendMessage, /sendCommand, /sendCallback,
// /getUpdates (the bot's replies) and /getUpdatesHistory. This front answers the bot-side routes
// (/bot<token>/<method>) itself, in the shapes aiogram 3 validates: the library's getMe lacks
// is_bot, its getUpdates ignores offset and timeout (aiogram would spin and lose updates), several
// methods return null where a bool or a Message is expected, and sendChatAction and
// sendMessageDraft (the answer shown growing while the bot writes it) are missing. It adds the
// client-side POST /getChatActions and /getDrafts, to see what the bot showed on the way.
// Buttons: POST /sendCallback presses an inline button under a bot message, as a user would (only
// a button the message has); answerCallbackQuery is kept and read with POST /getCallbackAnswers;
// editMessageText and editMessageReplyMarkup change the stored message, whose buttons a client
// reads with POST /getMessage (an edit that sends no reply_markup drops them, as in Telegram).
// Replies: a user's /sendMessage with reply_to_message_id (a message of that chat, the user's own as
// /getUpdatesHistory lists it, or the bot's) reaches the bot with reply_to_message, as Telegram nests it.
// Files: sendDocument takes a multipart upload (or a file_id sent before); the message in the
// user's updates carries `document`, and anyone with the token reads the file back as from
// Telegram: getFile, then GET /file/bot<token>/<file_path>.

const http = require('http');
const express = require('express');
const TelegramServer = require('telegram-test-api');

const PORT = intEnv('PORT', 8081);
const HOST = process.env.HOST || '0.0.0.0';
// Messages older than this are dropped (the library's clean-up); long enough for a dev session.
const STORE_TIMEOUT_SECONDS = intEnv('STORE_TIMEOUT_SECONDS', 3600);
const BOT_FIRST_NAME = process.env.BOT_FIRST_NAME || 'Butler (emulator)';
const BOT_USERNAME = process.env.BOT_USERNAME || 'butler_emulator_bot';
const VERBOSE = /^(1|true|yes)$/i.test(process.env.EMULATOR_VERBOSE || '');
const MAX_POLL_TIMEOUT_SECONDS = 50; // what Telegram allows for getUpdates' timeout
const MAX_TEXT_LENGTH = 4096; // Telegram's limit on a message's text after entity parsing
const MAX_CAPTION_LENGTH = 1024; // and on a caption
const MAX_UPLOAD_BYTES = 50 * 1024 * 1024; // the most a bot may upload

const CHAT_ACTIONS = new Set([
  'typing', 'upload_photo', 'record_video', 'upload_video', 'record_voice', 'upload_voice',
  'upload_document', 'choose_sticker', 'find_location', 'record_video_note', 'upload_video_note',
]);
const USER_UPDATE_EVENTS = ['AddedUserMessage', 'AddedUserCommand', 'AddedUserCallbackQuery'];
const TOKEN_RE = /^(\d+):[A-Za-z0-9_-]+$/;

function intEnv(name, fallback) {
  const value = Number.parseInt(process.env[name] || '', 10);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

function log(...args) {
  console.log(new Date().toISOString(), ...args);
}

const tg = new TelegramServer({ port: PORT, host: HOST, storeTimeout: STORE_TIMEOUT_SECONDS });
tg.setMaxListeners(0); // every waiting long poll listens for new user updates
const chatActions = []; // {botToken, chat_id, action, message_thread_id, time}
const drafts = []; // {botToken, chat_id, draft_id, text, parse_mode, message_thread_id, time}
const commands = new Map(); // token -> commands set by setMyCommands (default scope only)
const activePolls = new Map(); // token -> finish(status, body) of the pending getUpdates
// callback_query_id -> {botToken, chat_id, message_id, data, time, answer: {text, show_alert, time} | null}
const callbackQueries = new Map();
const MAX_CALLBACK_ANSWER_LENGTH = 200; // Telegram's limit on answerCallbackQuery's text
const files = new Map(); // file_id -> {botToken, file_unique_id, file_name, mime_type, file_path, data, time}
let filesStored = 0;

// ---------------------------------------------------------------- helpers

class ApiError extends Error {
  constructor(code, description) {
    super(description);
    this.code = code;
  }
}
const badRequest = (what) => new ApiError(400, `Bad Request: ${what}`);

function sendOk(res, result) {
  res.json({ ok: true, result });
}

function sendFail(res, code, description) {
  res.status(code).json({ ok: false, error_code: code, description });
}

function truthy(value) {
  return value === true || value === 1 || /^(true|1)$/i.test(String(value || ''));
}

function toInt(value, fallback) {
  const n = Number.parseInt(value, 10);
  return Number.isFinite(n) ? n : fallback;
}

function parseJsonField(value, field) {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch (e) {
    throw badRequest(`can't parse ${field} JSON object`);
  }
}

function requireChatId(params) {
  if (params.chat_id === undefined || params.chat_id === '') throw badRequest('chat_id is empty');
  const n = Number(params.chat_id);
  return Number.isSafeInteger(n) ? n : params.chat_id;
}

function botUser(token) {
  return {
    id: Number(TOKEN_RE.exec(token)[1]),
    is_bot: true,
    first_name: BOT_FIRST_NAME,
    username: BOT_USERNAME,
    can_join_groups: true,
    can_read_all_group_messages: false,
    supports_inline_queries: false,
  };
}

// The chat as the user's last message described it, else a bare private (or group) chat.
function chatFor(token, chatId) {
  for (let i = tg.storage.userMessages.length - 1; i >= 0; i--) {
    const update = tg.storage.userMessages[i];
    const chat = update.botToken === token && update.message && update.message.chat;
    if (chat && String(chat.id) === String(chatId)) return { ...chat, id: Number(chat.id) };
  }
  const id = Number(chatId);
  return id < 0 ? { id, type: 'group', title: 'Group' } : { id, type: 'private', first_name: 'User' };
}

// --------------------------------------------------- Telegram HTML parse_mode
// Renders text the way Telegram does for parse_mode=HTML: tags become entities, the four named
// entities and numeric ones are decoded, and what Telegram rejects (an unsupported tag such as
// <br>, a tag left open, a bare "<") is rejected here with the same kind of 400.

const HTML_TAGS = {
  b: 'bold', strong: 'bold', i: 'italic', em: 'italic', u: 'underline', ins: 'underline',
  s: 'strikethrough', strike: 'strikethrough', del: 'strikethrough', 'tg-spoiler': 'spoiler',
  span: 'spoiler', a: 'text_link', code: 'code', pre: 'pre', blockquote: 'blockquote',
  'tg-emoji': 'custom_emoji',
};
const NAMED_ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"' };

function decodeEntities(text) {
  return text.replace(/&(#\d+|#x[0-9a-f]+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X'
        ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[name.toLowerCase()] ?? whole;
  });
}

function parseHtml(source) {
  const byteOffset = (i) => Buffer.byteLength(source.slice(0, i));
  const fail = (what) => { throw badRequest(`can't parse entities: ${what}`); };
  const entities = [];
  const open = [];
  let text = '';
  let i = 0;
  while (i < source.length) {
    const lt = source.indexOf('<', i);
    text += decodeEntities(source.slice(i, lt < 0 ? source.length : lt));
    if (lt < 0) break;
    const gt = source.indexOf('>', lt);
    if (gt < 0) fail(`Can't find end of the tag starting at byte offset ${byteOffset(lt)}`);
    const raw = source.slice(lt + 1, gt);
    if (raw.startsWith('/')) {
      const name = raw.slice(1).trim().toLowerCase();
      const top = open.pop();
      if (!top) fail(`Unexpected end tag at byte offset ${byteOffset(lt)}`);
      if (name && name !== top.name) {
        fail(`Can't find end tag corresponding to start tag "${top.name}"`);
      }
      if (text.length > top.offset && !top.merged) {
        entities.push({ ...top.entity, offset: top.offset, length: text.length - top.offset });
      }
    } else {
      const match = /^([a-z][a-z0-9-]*)((?:\s[^]*)?)$/i.exec(raw);
      const name = match && match[1].toLowerCase();
      if (!match || !HTML_TAGS[name]) {
        fail(`Unsupported start tag "${match ? name : raw}" at byte offset ${byteOffset(lt)}`);
      }
      const attrs = {};
      for (const m of match[2].matchAll(/([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"']+))/gi)) {
        attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4]);
      }
      const entity = { type: HTML_TAGS[name] };
      let merged = false;
      if (name === 'span' && attrs.class !== 'tg-spoiler') {
        fail(`Tag "span" must have class "tg-spoiler" at byte offset ${byteOffset(lt)}`);
      } else if (name === 'a') {
        if (!attrs.href) fail(`Tag "a" must have attribute "href" at byte offset ${byteOffset(lt)}`);
        entity.url = attrs.href;
      } else if (name === 'tg-emoji') {
        entity.custom_emoji_id = attrs['emoji-id'] || '0';
      } else if (name === 'blockquote' && 'expandable' in attrs) {
        entity.type = 'expandable_blockquote';
      } else if (name === 'code' && open.length && open[open.length - 1].name === 'pre') {
        // <pre><code class="language-x"> is one pre entity with a language, as in Telegram.
        const pre = open[open.length - 1];
        const lang = /^language-(.+)$/.exec(attrs.class || '');
        if (lang) pre.entity.language = lang[1];
        merged = true;
      }
      open.push({ name, entity, offset: text.length, merged });
    }
    i = gt + 1;
  }
  if (open.length) fail(`Can't find end tag corresponding to start tag "${open[open.length - 1].name}"`);
  entities.sort((a, b) => a.offset - b.offset || b.length - a.length);
  return { text, entities };
}

// The user-visible text and entities of an outgoing text, per parse_mode (HTML is rendered;
// Markdown flavours are passed through as plain text). Only a draft may be empty.
function renderText(params, { allowEmpty = false } = {}) {
  const empty = { text: '', entities: [] };
  if (params.text === undefined || String(params.text).trim() === '') {
    if (allowEmpty) return empty;
    throw badRequest('message text is empty');
  }
  const source = String(params.text);
  let rendered = { text: source, entities: parseJsonField(params.entities, 'entities') || [] };
  if (String(params.parse_mode || '').toUpperCase() === 'HTML') rendered = parseHtml(source);
  if (rendered.text.trim() === '') {
    if (allowEmpty) return empty;
    throw badRequest('message text is empty');
  }
  if (rendered.text.length > MAX_TEXT_LENGTH) throw badRequest('message is too long');
  return rendered;
}

// A document's caption: optional, rendered like a text, at most MAX_CAPTION_LENGTH long.
function renderCaption(params) {
  const caption = { text: params.caption, parse_mode: params.parse_mode, entities: params.caption_entities };
  const rendered = renderText(caption, { allowEmpty: true });
  if (rendered.text.length > MAX_CAPTION_LENGTH) throw badRequest('message caption is too long');
  return rendered;
}

// The multipart/form-data body a bot sends with a file, read with Node's own fetch Response:
// text fields as strings, each file as {file_name, mime_type, data}.
async function readMultipart(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_UPLOAD_BYTES) throw new ApiError(413, 'Request Entity Too Large');
    chunks.push(chunk);
  }
  let form;
  try {
    form = await new Response(Buffer.concat(chunks), { headers: { 'content-type': req.headers['content-type'] } })
      .formData();
  } catch (error) {
    throw badRequest(`can't parse the multipart body: ${error.message}`);
  }
  const params = {};
  for (const [name, value] of form) {
    params[name] = typeof value === 'string' ? value : {
      file_name: value.name,
      mime_type: value.type || 'application/octet-stream',
      data: Buffer.from(await value.arrayBuffer()),
    };
  }
  return params;
}

// The document a bot sends: a new upload (in the field itself, or in the one "attach://<name>" names) is
// stored; another string must be the file_id of one it sent before.
function storeDocument(token, params) {
  let { document } = params;
  if (typeof document === 'string' && document.startsWith('attach://')) document = params[document.slice(9)];
  if (document === undefined || document === '') throw badRequest('there is no document in the request');
  if (typeof document === 'string') {
    const known = files.get(document);
    if (!known || known.botToken !== token) {
      throw badRequest('wrong file identifier/HTTP URL specified (the emulator takes uploads and file_ids)');
    }
    return known;
  }
  filesStored += 1;
  const extension = /\.[A-Za-z0-9]{1,8}$/.exec(document.file_name || '');
  const file = {
    botToken: token,
    file_id: `emulator-document-${filesStored}-${Date.now().toString(36)}`,
    file_unique_id: `emudoc${filesStored}`,
    file_name: document.file_name || `file_${filesStored}`,
    mime_type: document.mime_type,
    file_path: `documents/file_${filesStored}${extension ? extension[0] : ''}`,
    data: document.data,
    time: Date.now(),
  };
  files.set(file.file_id, file);
  return file;
}

// A stored bot message, as the Message object Telegram would return for it.
function messageResult(token, stored) {
  const m = stored.message;
  const result = {
    message_id: stored.messageId,
    from: botUser(token),
    chat: chatFor(token, m.chat_id),
    date: Math.floor(stored.time / 1000),
  };
  if (m.document) {
    const { text, entities } = renderCaption(m);
    result.document = m.document;
    if (text) result.caption = text;
    if (entities.length) result.caption_entities = entities;
  } else {
    const { text, entities } = renderText(m);
    result.text = text;
    if (entities.length) result.entities = entities;
  }
  const buttons = inlineKeyboard(m);
  if (buttons) result.reply_markup = buttons;
  if (stored.editTime) result.edit_date = Math.floor(stored.editTime / 1000);
  return result;
}

// A message's inline keyboard, or undefined when it has no button (Telegram then sends no reply_markup).
function inlineKeyboard(message) {
  const markup = message.reply_markup;
  const rows = markup && Array.isArray(markup.inline_keyboard) ? markup.inline_keyboard : [];
  return rows.some((row) => row.length) ? markup : undefined;
}

const notModified = () => badRequest('message is not modified: specified new message content and reply markup '
  + 'are exactly the same as a current content and reply markup of the message');

function findBotMessage(token, chatId, messageId) {
  return tg.storage.botMessages.find((u) => u.botToken === token
    && String(u.message.chat_id) === String(chatId) && String(u.messageId) === String(messageId));
}

// The message a user's reply answers, as Telegram nests it: one of that chat, the user's or the bot's, without
// a reply_to_message of its own.
function repliedMessage(token, chatId, messageId) {
  const own = tg.storage.userMessages.find((u) => u.botToken === token && u.message
    && String(u.message.chat.id) === String(chatId) && String(u.messageId) === String(messageId));
  if (own) {
    const { reply_to_message: _nested, ...message } = formatUpdate(own).message;
    return message;
  }
  const bots = findBotMessage(token, chatId, messageId);
  if (bots) return messageResult(token, bots);
  throw badRequest('message to be replied not found');
}

function pendingUpdates(token, limit) {
  return tg.storage.userMessages
    .filter((u) => u.botToken === token && !u.confirmed)
    .sort((a, b) => a.updateId - b.updateId)
    .slice(0, limit);
}

function formatUpdate(stored) {
  const update = TelegramServer.formatUpdate(stored); // a copy of the stored message
  if (update.message) delete update.message.botToken; // the library's routing field
  // Telegram always sends chat_instance with a callback query; the library leaves it out.
  if (update.callback_query) update.callback_query.chat_instance = stored.callbackQuery.chat_instance;
  return update;
}

// ---------------------------------------------------------------- bot methods
// Each takes (token, params, req, res) and returns a result, or a Promise of one for getUpdates.

const methods = {
  getMe: (token) => botUser(token),

  getUpdates(token, params, req, res) {
    if (tg.webhooks[token]) {
      throw new ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
        + 'use deleteWebhook to delete the webhook first');
    }
    const offset = toInt(params.offset, 0);
    const limit = Math.min(Math.max(toInt(params.limit, 100), 1), 100);
    const timeout = Math.min(Math.max(toInt(params.timeout, 0), 0), MAX_POLL_TIMEOUT_SECONDS);
    // Updates below the offset are confirmed and never returned again, as in Telegram.
    for (const u of tg.storage.userMessages) {
      if (u.botToken === token && offset > 0 && u.updateId < offset) u.confirmed = true;
    }
    const take = () => {
      const updates = pendingUpdates(token, limit);
      for (const u of updates) u.isRead = true;
      return updates.map(formatUpdate);
    };
    const ready = take();
    if (ready.length || timeout === 0) return ready;

    // Long poll: answer when a user update arrives, at the timeout, or 409 when another poll
    // for the same token starts (Telegram's "terminated by other getUpdates request").
    const previous = activePolls.get(token);
    if (previous) previous(409, 'Conflict: terminated by other getUpdates request; '
      + 'make sure that only one bot instance is running');
    return new Promise((resolve, reject) => {
      let timer = null;
      const finish = (status, description) => {
        clearTimeout(timer);
        USER_UPDATE_EVENTS.forEach((event) => tg.off(event, onUpdate));
        if (activePolls.get(token) === finish) activePolls.delete(token);
        if (status) reject(new ApiError(status, description));
        else resolve(take());
      };
      function onUpdate() {
        if (pendingUpdates(token, 1).length) finish();
      }
      timer = setTimeout(() => finish(), timeout * 1000);
      USER_UPDATE_EVENTS.forEach((event) => tg.on(event, onUpdate));
      activePolls.set(token, finish);
      res.on('close', () => { if (!res.writableEnded) finish(); }); // the bot hung up
    });
  },

  sendMessage(token, params) {
    const chatId = requireChatId(params);
    const message = { ...params, chat_id: chatId };
    for (const field of ['reply_markup', 'entities', 'reply_parameters', 'link_preview_options']) {
      if (field in message) message[field] = parseJsonField(message[field], field);
    }
    renderText(message); // reject what Telegram rejects before storing anything
    const { message_id: messageId } = tg.addBotMessage(message, token);
    const stored = tg.storage.botMessages.find((u) => u.messageId === messageId && u.botToken === token);
    return messageResult(token, stored);
  },

  sendDocument(token, params) {
    const chatId = requireChatId(params);
    const message = { chat_id: chatId };
    for (const field of ['caption', 'parse_mode']) if (params[field] !== undefined) message[field] = String(params[field]);
    for (const field of ['reply_markup', 'caption_entities', 'reply_parameters']) {
      if (params[field] !== undefined) message[field] = parseJsonField(params[field], field);
    }
    renderCaption(message); // reject what Telegram rejects before storing anything
    const file = storeDocument(token, params);
    message.document = {
      file_id: file.file_id,
      file_unique_id: file.file_unique_id,
      file_name: file.file_name,
      mime_type: file.mime_type,
      file_size: file.data.length,
    };
    const { message_id: messageId } = tg.addBotMessage(message, token);
    const stored = tg.storage.botMessages.find((u) => u.messageId === messageId && u.botToken === token);
    return messageResult(token, stored);
  },

  getFile(token, params) {
    const file = files.get(String(params.file_id || ''));
    if (!file || file.botToken !== token) throw badRequest('invalid file_id');
    return {
      file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.data.length, file_path: file.file_path,
    };
  },

  sendChatAction(token, params) {
    const chatId = requireChatId(params);
    if (!CHAT_ACTIONS.has(params.action)) throw badRequest('wrong parameter action in request');
    const record = { botToken: token, chat_id: chatId, action: params.action, time: Date.now() };
    if (params.message_thread_id !== undefined) record.message_thread_id = Number(params.message_thread_id);
    chatActions.push(record);
    return true;
  },

  // A draft of the message the bot is writing, shown in a private chat until the bot sends the
  // message (or ~30 s pass). An empty text is Telegram's "Thinking…" placeholder.
  sendMessageDraft(token, params) {
    const chatId = requireChatId(params);
    const draftId = Number(params.draft_id);
    if (params.draft_id === undefined || params.draft_id === '') throw badRequest('draft_id is empty');
    if (!Number.isSafeInteger(draftId) || draftId === 0) throw badRequest('draft_id must be a non-zero integer');
    if (chatFor(token, chatId).type !== 'private') throw badRequest('TEXTDRAFT_PEER_INVALID');
    renderText(params, { allowEmpty: true }); // reject what Telegram rejects before storing anything
    const text = params.text === undefined ? '' : String(params.text);
    const record = { botToken: token, chat_id: Number(chatId), draft_id: draftId, text, time: Date.now() };
    if (params.parse_mode) record.parse_mode = String(params.parse_mode);
    if (params.message_thread_id !== undefined) record.message_thread_id = Number(params.message_thread_id);
    drafts.push(record);
    return true;
  },

  editMessageText(token, params) {
    const chatId = requireChatId(params);
    const stored = findBotMessage(token, chatId, params.message_id);
    if (!stored) throw badRequest('message to edit not found');
    const edit = { ...params, chat_id: chatId };
    if ('reply_markup' in edit) edit.reply_markup = parseJsonField(edit.reply_markup, 'reply_markup');
    renderText(edit);
    if (String(edit.text) === String(stored.message.text)
        && String(edit.parse_mode || '') === String(stored.message.parse_mode || '')
        && JSON.stringify(inlineKeyboard(edit)) === JSON.stringify(inlineKeyboard(stored.message))) {
      throw notModified();
    }
    tg.editMessageText(edit);
    // The library keeps the old buttons; Telegram keeps only those sent with the edit.
    if (!inlineKeyboard(edit)) delete stored.message.reply_markup;
    stored.editTime = Date.now();
    return messageResult(token, stored);
  },

  editMessageReplyMarkup(token, params) {
    const chatId = requireChatId(params);
    const stored = findBotMessage(token, chatId, params.message_id);
    if (!stored) throw badRequest('message to edit not found');
    const buttons = inlineKeyboard({ reply_markup: parseJsonField(params.reply_markup, 'reply_markup') });
    if (JSON.stringify(buttons) === JSON.stringify(inlineKeyboard(stored.message))) throw notModified();
    stored.message = { ...stored.message, reply_markup: buttons };
    if (!buttons) delete stored.message.reply_markup;
    stored.editTime = Date.now();
    return messageResult(token, stored);
  },

  deleteMessage(token, params) {
    const chatId = requireChatId(params);
    if (!tg.deleteMessage(Number(chatId), Number(params.message_id))) {
      throw badRequest('message to delete not found');
    }
    return true;
  },

  // Kept for POST /getCallbackAnswers. Like Telegram: once per query, at most 200 characters.
  answerCallbackQuery(token, params) {
    const query = callbackQueries.get(String(params.callback_query_id || ''));
    if (!query || query.botToken !== token || query.answer) {
      throw badRequest('query is too old and response timeout expired or query ID is invalid');
    }
    const text = params.text === undefined ? '' : String(params.text);
    if (text.length > MAX_CALLBACK_ANSWER_LENGTH) throw badRequest('MESSAGE_TOO_LONG');
    query.answer = { text, show_alert: truthy(params.show_alert), time: Date.now() };
    return true;
  },

  deleteWebhook(token, params) {
    tg.deleteWebhook(token);
    if (truthy(params.drop_pending_updates)) {
      for (const u of tg.storage.userMessages) if (u.botToken === token) u.confirmed = true;
    }
    return true;
  },

  setWebhook(token, params) {
    if (!params.url) return methods.deleteWebhook(token, params);
    tg.setWebhook({ url: String(params.url) }, token);
    return true;
  },

  getWebhookInfo: (token) => ({
    url: (tg.webhooks[token] && tg.webhooks[token].url) || '',
    has_custom_certificate: false,
    pending_update_count: pendingUpdates(token, Infinity).length,
  }),

  setMyCommands(token, params) {
    commands.set(token, parseJsonField(params.commands, 'commands') || []);
    return true;
  },
  getMyCommands: (token) => commands.get(token) || [],
  deleteMyCommands(token) {
    commands.delete(token);
    return true;
  },
};
// Telegram's method names are case-insensitive.
const methodsByName = new Map(Object.entries(methods).map(([k, v]) => [k.toLowerCase(), v]));

async function botRoute(req, res) {
  const { token, method } = req.params;
  const handler = methodsByName.get(method.toLowerCase());
  try {
    if (!TOKEN_RE.test(token)) throw new ApiError(401, 'Unauthorized');
    if (!handler) {
      throw new ApiError(404, `Not Found: method ${method} is not implemented by the emulator`);
    }
    const body = req.is('multipart/form-data') ? await readMultipart(req) : req.body;
    const params = { ...req.query, ...body };
    const result = await handler(token, params, req, res);
    if (VERBOSE && method !== 'getUpdates') log(`bot ${method}`, JSON.stringify(params));
    if (!res.headersSent) sendOk(res, result);
  } catch (error) {
    if (res.headersSent) return;
    if (error instanceof ApiError) sendFail(res, error.code, error.message);
    else {
      log(`bot ${method} failed:`, error);
      sendFail(res, 500, `Internal Server Error: ${error.message}`);
    }
  }
}

// ------------------------------------------------------- client (user) side
// The library's routes want {botToken, from, chat, date, text} for /sendMessage and /sendCommand
// and {token, chatId} for /getUpdates; these fill the rest from {token, user_id, text} so a curl
// line is enough, and turn a missing token into a 400 instead of the library's crash.

const HELPER_FIELDS = ['token', 'user_id', 'userId', 'chat_id', 'chatId', 'first_name', 'username'];

function userMessage(body) {
  const token = botToken(body);
  const userId = Number(body.user_id ?? body.userId ?? (body.from && body.from.id) ?? 1);
  const from = body.from
    ? { ...body.from, id: Number(body.from.id), is_bot: truthy(body.from.is_bot) }
    : {
      id: userId, is_bot: false, first_name: body.first_name || 'Test', username: body.username || `user${userId}`,
    };
  const chatId = Number(body.chat_id ?? body.chatId ?? (body.chat && body.chat.id) ?? userId);
  const chat = body.chat
    ? { ...body.chat, id: chatId }
    : { id: chatId, type: 'private', first_name: from.first_name, username: from.username };
  const message = { ...body, botToken: token, from, chat, date: Number(body.date) || Math.floor(Date.now() / 1000) };
  HELPER_FIELDS.forEach((field) => delete message[field]);
  if (body.reply_to_message_id !== undefined) {
    message.reply_to_message = repliedMessage(token, chat.id, body.reply_to_message_id);
    delete message.reply_to_message_id;
  }
  const text = message.text === undefined ? undefined : String(message.text);
  if (text !== undefined) message.text = text;
  if (message.entities) message.entities = parseJsonField(message.entities, 'entities');
  else if (text && text.startsWith('/')) {
    // A Telegram client marks a leading /command as a bot_command entity.
    message.entities = [{ type: 'bot_command', offset: 0, length: text.split(/\s/)[0].length }];
  }
  return message;
}

function clientRoute(normalize) {
  return (req, res, next) => {
    try {
      req.body = normalize(req.body || {});
      next();
    } catch (error) {
      sendFail(res, error.code || 400, error.message);
    }
  };
}

function botToken(body) {
  const token = body.botToken || body.token;
  if (!token) throw badRequest('token (the bot token) is required');
  return token;
}

function chatQuery(body) {
  return { token: botToken(body), chatId: body.chatId ?? body.chat_id ?? body.user_id ?? body.userId };
}

function chatQueryRequired(body) {
  const query = chatQuery(body);
  if (query.chatId === undefined) throw badRequest('chat_id (the user\'s chat, i.e. its user id) is required');
  return query;
}

// ---------------------------------------------------------------- the app

const app = express();
app.disable('x-powered-by');
app.use(express.json({ limit: '1mb' }));
app.use(express.urlencoded({ extended: true, limit: '1mb' }));

let stopping = false;
app.use((_req, res, next) => {
  if (stopping) res.set('Connection', 'close'); // let no connection linger once SIGTERM came
  next();
});
app.get('/health', (_req, res) => res.json({ ok: true }));
app.all('/bot:token/:method', botRoute);
// A file a bot sent, downloaded as from Telegram (the path from getFile).
app.get('/file/bot:token/*', (req, res) => {
  const file = [...files.values()].find((f) => f.botToken === req.params.token && f.file_path === req.params[0]);
  if (!file) return sendFail(res, 404, 'Not Found');
  return res.type(file.mime_type).send(file.data);
});

app.post(['/sendMessage', '/sendCommand'], clientRoute(userMessage));
// The user presses a button under a bot message: {token, user_id, message_id, data} or, as a person
// reads it, {token, user_id, text: "+10 min"}; without message_id, the newest message in the chat
// with that button. Answers {callback_query_id, message_id}.
app.post('/sendCallback', async (req, res) => {
  try {
    const body = req.body || {};
    const { botToken: token, from, chat } = userMessage({ ...body, text: undefined });
    const wanted = body.data !== undefined
      ? ['callback_data', String(body.data)] : ['text', String(body.text ?? '')];
    const hasButton = (stored) => (inlineKeyboard(stored.message) || { inline_keyboard: [] }).inline_keyboard
      .flat().find((button) => button[wanted[0]] === wanted[1]);
    const messages = tg.storage.botMessages.filter((u) => u.botToken === token
      && String(u.message.chat_id) === String(chat.id)
      && (body.message_id === undefined || String(u.messageId) === String(body.message_id)));
    const stored = messages.reverse().find(hasButton);
    if (!stored) {
      const where = body.message_id === undefined ? `no message in chat ${chat.id}` : `message ${body.message_id}`;
      const has = body.message_id === undefined ? 'has a' : 'has no';
      throw badRequest(`${where} ${has} button with ${wanted[0]} ${JSON.stringify(wanted[1])}`);
    }
    const button = hasButton(stored);
    if (button.callback_data === undefined) throw badRequest('that button sends no callback data');
    const id = String(tg.callbackId); // the id the library gives this query
    await tg.addUserCallback({
      botToken: token, from, message: messageResult(token, stored), data: button.callback_data,
      chat_instance: String(chat.id),
    });
    callbackQueries.set(id, {
      botToken: token, chat_id: chat.id, message_id: stored.messageId, data: button.callback_data,
      time: Date.now(), answer: null,
    });
    sendOk(res, { callback_query_id: id, message_id: stored.messageId });
  } catch (error) {
    sendFail(res, error.code || 400, error.message);
  }
});
app.post('/getUpdates', clientRoute(chatQueryRequired));
app.post('/getUpdatesHistory', clientRoute((body) => ({ token: botToken(body) })));
// The chat actions (e.g. "typing") the bot sent, oldest first; not consumed by reading.
app.post('/getChatActions', clientRoute(chatQuery), (req, res) => {
  const { token, chatId } = req.body;
  sendOk(res, chatActions.filter((a) => a.botToken === token
    && (chatId === undefined || String(a.chat_id) === String(chatId))));
});

// The drafts the bot showed (sendMessageDraft), oldest first; not consumed by reading. Each has
// draft_id, text (as the bot sent it, with parse_mode if any) and time.
app.post('/getDrafts', clientRoute(chatQuery), (req, res) => {
  const { token, chatId } = req.body;
  sendOk(res, drafts.filter((d) => d.botToken === token
    && (chatId === undefined || String(d.chat_id) === String(chatId))));
});

// The presses in a chat (or all), oldest first, each with the bot's answer once it came (else null).
app.post('/getCallbackAnswers', clientRoute(chatQuery), (req, res) => {
  const { token, chatId } = req.body;
  sendOk(res, [...callbackQueries].filter(([, q]) => q.botToken === token
    && (chatId === undefined || String(q.chat_id) === String(chatId)))
    .map(([id, q]) => ({ callback_query_id: id, ...q, botToken: undefined })));
});

// One bot message as Telegram shows it now: text, buttons (reply_markup) and edit_date after an edit.
const messageQuery = (body) => ({ ...chatQueryRequired(body), messageId: body.message_id });
app.post('/getMessage', clientRoute(messageQuery), (req, res) => {
  const { token, chatId, messageId } = req.body;
  const stored = findBotMessage(token, chatId, messageId);
  if (!stored) return sendFail(res, 400, 'Bad Request: message not found');
  return sendOk(res, messageResult(token, stored));
});

// The library's own app: its client routes (/sendMessage, /getUpdates, ...) and storage.
app.use(tg.webServer);

// ---------------------------------------------------------------- lifecycle

const server = http.createServer(app);
server.keepAliveTimeout = 75 * 1000; // longer than aiohttp's 15 s idle reuse, so no reset races
server.headersTimeout = 76 * 1000;

const cleanUp = setInterval(() => {
  tg.cleanUp();
  const oldest = Date.now() - STORE_TIMEOUT_SECONDS * 1000;
  while (chatActions.length && chatActions[0].time < oldest) chatActions.shift();
  while (drafts.length && drafts[0].time < oldest) drafts.shift();
  for (const [id, query] of callbackQueries) if (query.time < oldest) callbackQueries.delete(id);
  for (const [fileId, file] of files) if (file.time < oldest) files.delete(fileId);
}, Math.min(STORE_TIMEOUT_SECONDS, 600) * 1000);
cleanUp.unref();

process.on('unhandledRejection', (error) => log('unhandled rejection:', error));

function shutdown(signal) {
  log(`${signal}: stopping`);
  stopping = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  for (const finish of [...activePolls.values()]) finish(); // answer the long polls now
  setTimeout(() => {
    server.closeAllConnections();
    process.exit(0);
  }, 1500).unref();
}
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));

server.listen(PORT, HOST, () => {
  const base = `http://localhost:${PORT}`;
  const json = "-H 'Content-Type: application/json'";
  log(`telegram emulator on ${HOST}:${PORT}, bot API base ${base} (aiogram: `
    + `TelegramAPIServer.from_base("${base}")). As user 42 say /start: curl -s ${base}/sendMessage ${json} `
    + `-d '{"token":"<BOT_TOKEN>","user_id":42,"text":"/start"}' ; read the bot's new replies: `
    + `curl -s ${base}/getUpdates ${json} -d '{"token":"<BOT_TOKEN>","chat_id":42}' ; the drafts it showed `
    + `while writing: the same with /getDrafts ; health: GET /health`);
});
