"""A tiny GGUF model (llama architecture, ~0.5 MB) that llama-server loads in well under a second.

It stands in for Mistral-7B-Instruct-v0.3 in the end-to-end tests: same kind of tokenizer (SentencePiece with
byte fallback, so any text tokenizes), the same control tokens ([INST], [TOOL_CALLS], ...) and a Mistral-style chat
template that renders system, user, assistant, tool-call and tool-result messages without ever raising.

The weights are random (seeded, so every file is identical) with one deliberate bias: every position predicts
the token "ok" by a wide margin, so any sampler settings give the reply "okok…" - valid UTF-8, never an early
end of sequence and never a tool-call marker - whatever CPU runs it.
"""

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType, TokenType

REPLY_TOKEN = "ok"

# Mistral v0.3's first control tokens, at the same ids.
CONTROL_TOKENS = [
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[TOOL_CALLS]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
]
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2

# Mistral v0.3's template in spirit (tools before the last user turn, [TOOL_CALLS] JSON, [TOOL_RESULTS]),
# minus its raise_exception checks, so no message sequence makes it fail.
CHAT_TEMPLATE = """\
{{- bos_token -}}
{%- set ns = namespace(system="", last_user=-1) -%}
{%- for message in messages -%}
    {%- if message.role == "system" -%}
        {%- set ns.system = message.content -%}
    {%- elif message.role == "user" -%}
        {%- set ns.last_user = loop.index0 -%}
    {%- endif -%}
{%- endfor -%}
{%- for message in messages -%}
    {%- if message.role == "user" -%}
        {%- if tools is defined and tools and loop.index0 == ns.last_user -%}
            {{- "[AVAILABLE_TOOLS] " + (tools | tojson) + "[/AVAILABLE_TOOLS]" -}}
        {%- endif -%}
        {%- if loop.index0 == ns.last_user and ns.system -%}
            {{- "[INST] " + ns.system + "\\n\\n" + message.content + "[/INST]" -}}
        {%- else -%}
            {{- "[INST] " + message.content + "[/INST]" -}}
        {%- endif -%}
    {%- elif message.role == "assistant" and message.tool_calls is defined and message.tool_calls -%}
        {{- "[TOOL_CALLS] [" -}}
        {%- for call in message.tool_calls -%}
            {{- '{"name": ' + (call.function.name | tojson) + ', "arguments": ' + (call.function.arguments | tojson) -}}
            {{- ', "id": ' + ((call.id if call.id is defined and call.id else "") | tojson) + "}" -}}
            {%- if not loop.last -%}{{- ", " -}}{%- endif -%}
        {%- endfor -%}
        {{- "]" + eos_token -}}
    {%- elif message.role == "assistant" -%}
        {{- (message.content if message.content else "") + eos_token -}}
    {%- elif message.role == "tool" -%}
        {{- '[TOOL_RESULTS] {"content": ' + (message.content | tojson) -}}
        {{- ', "call_id": ' + ((message.tool_call_id if message.tool_call_id is defined else "") | tojson) -}}
        {{- "}[/TOOL_RESULTS]" -}}
    {%- endif -%}
{%- endfor -%}
"""

N_EMBD = 64
N_FF = 128
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 2
CONTEXT_LENGTH = 2048
SEED = 20240522


def _vocab() -> tuple[list[str], list[float], list[TokenType]]:
    """Control tokens, the 256 byte-fallback tokens, then a few ordinary pieces."""
    tokens = list(CONTROL_TOKENS)
    types = [TokenType.UNKNOWN] + [TokenType.CONTROL] * (len(CONTROL_TOKENS) - 1)
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [TokenType.BYTE] * 256
    tokens += ["\u2581", REPLY_TOKEN]
    types += [TokenType.NORMAL] * 2
    scores = [0.0] * len(tokens)
    return tokens, scores, types


def write_tiny_gguf(path: Path) -> None:
    """Write the tiny model to `path` (deterministic: the same bytes on every call)."""
    tokens, scores, types = _vocab()
    n_vocab = len(tokens)
    reply_id = tokens.index(REPLY_TOKEN)
    rng = np.random.default_rng(SEED)

    def weights(*shape: int) -> np.ndarray:
        # numpy shape (rows, cols) is (output, input), as llama.cpp's converters write it.
        return rng.normal(0.0, 0.02, size=shape).astype(np.float32)

    head_dim = N_EMBD // N_HEAD
    n_embd_kv = head_dim * N_HEAD_KV

    # Residual dimension 0 carries a constant 1.0 that no layer writes to; after the final RMS norm it is
    # strongly positive, and only the reply token's output row reads it.
    token_embd = weights(n_vocab, N_EMBD)
    token_embd[:, 0] = 1.0
    output = weights(n_vocab, N_EMBD)
    output[:, 0] = 0.0
    output[reply_id, 0] = 10.0

    writer = GGUFWriter(str(path), arch="llama")
    writer.add_name("butler-tiny-test-model")
    writer.add_file_type(LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(UNK_ID)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", token_embd)
    for layer in range(N_LAYER):
        attn_output = weights(N_EMBD, N_EMBD)
        attn_output[0, :] = 0.0
        ffn_down = weights(N_EMBD, N_FF)
        ffn_down[0, :] = 0.0
        blk = f"blk.{layer}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{blk}.attn_q.weight", weights(N_EMBD, N_EMBD))
        writer.add_tensor(f"{blk}.attn_k.weight", weights(n_embd_kv, N_EMBD))
        writer.add_tensor(f"{blk}.attn_v.weight", weights(n_embd_kv, N_EMBD))
        writer.add_tensor(f"{blk}.attn_output.weight", attn_output)
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_gate.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{blk}.ffn_up.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{blk}.ffn_down.weight", ffn_down)
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    # Readable by the container's non-root user when bind-mounted or copied in.
    path.chmod(0o644)
