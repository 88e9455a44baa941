/**
 * The tokenizer of the built-in tiny model: each UTF-8 byte of a task is one token whose id is the
 * byte (0..255). It is a real Hugging Face tokenizer.json (a byte-level BPE without merges), run by
 * the same VlmTokenizer as SmolVLM's, so batches, padding and truncation follow the one code path,
 * and checkpoints carry it like any tokenizer (pretrained_model/tokenizer.json). Models with a
 * SmolVLM vocabulary use the VLM's own tokenizer.json instead.
 */
import { VlmTokenizer } from '../policy/tokenizer';

/** GPT-2's byte -> printable character table, which the ByteLevel pre-tokenizer applies. */
function byteCharacters(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const chars: string[] = new Array(256);
  for (const b of printable) chars[b] = String.fromCodePoint(b);
  let extra = 0;
  for (let b = 0; b < 256; b++) if (chars[b] === undefined) chars[b] = String.fromCodePoint(256 + extra++);
  return chars;
}

/** tokenizer.json and tokenizer_config.json of the byte tokenizer; the pad token is byte 0 (NUL). */
export function byteTokenizerFiles(): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } {
  const chars = byteCharacters();
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  return {
    tokenizer: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: null,
      decoder: byteLevel,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab: Object.fromEntries(chars.map((c, b) => [c, b])),
        merges: [],
      },
    },
    config: { pad_token: chars[0] },
  };
}

/** The byte tokenizer (ids 0..255): needs a vocabulary of at least 256. */
export function byteTokenizer(): VlmTokenizer {
  const { tokenizer, config } = byteTokenizerFiles();
  return new VlmTokenizer(tokenizer, config, '<byte tokenizer>');
}
