/**
 * Rules for prose: instructions aimed at the agent that will later load this skill or memory
 * (prompt injection), and characters a reviewer cannot see (invisible and bidirectional Unicode).
 */
import type { CommandFinding, Severity } from './findings.js';

export interface LineFinding {
  line: number;
  finding: CommandFinding;
  excerpt: string;
}

interface InjectionRule {
  rule: string;
  severity: Severity;
  pattern: RegExp;
  reason: string;
}

const INJECTION: InjectionRule[] = [
  {
    rule: 'ignore-instructions',
    severity: 'high',
    pattern:
      /\b(?:ignore|disregard|forget|override|overrule)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|these\s+|those\s+)?(?:previous|prior|above|earlier|preceding|system|original|safety|initial|existing|developer)\s+(?:instructions?|prompts?|rules|guidelines|directives|constraints|guardrails|polic(?:y|ies))\b|\b(?:ignore|disregard|forget)\s+(?:all|any|everything)\s+(?:(?:instructions?|rules|guidelines)\s+)?(?:you (?:were|have been) (?:given|told)|(?:from|in|by) (?:the|your) (?:system|operator|user|developer))/i,
    reason: 'tells the agent to drop its instructions',
  },
  {
    rule: 'hide-from-user',
    severity: 'high',
    pattern:
      /\b(?:do not|don't|never|must not)\s+(?:tell|inform|notify|alert|warn)\s+(?:the |your )?(?:user|operator|human|owner)s?\s+(?:about|that|of|what)\b|\b(?:do not|don't|never|must not)\s+(?:mention|reveal|report|disclose|show)\s+(?:this|it|that|these|anything|the \w+(?: \w+)?)\s+to (?:the |your )?(?:user|operator|human|owner)|\bwithout (?:asking|telling|informing|notifying|alerting|confirming with|the knowledge of) (?:the |your )?(?:user|operator|human|owner)|\b(?:hide|conceal) (?:this|it|the \w+) from (?:the |your )?(?:user|operator|human)/i,
    reason: 'tells the agent to act behind the user’s back',
  },
  {
    rule: 'role-override',
    severity: 'high',
    pattern:
      /\b(?:you are now|from now on,? you(?: are|'re)|act as|pretend (?:to be|you are)|switch to)\b.{0,40}\b(?:unrestricted|jailbroken|jailbreak|DAN|developer mode|god mode|no (?:rules|restrictions|limits|filters))\b/i,
    reason: 'tries to switch the agent into an unrestricted role',
  },
  {
    rule: 'disable-safety',
    severity: 'high',
    pattern:
      /\b(?:bypass|disable|circumvent|evade|get around|turn off|switch off)\b.{0,30}\b(?:approvals?|the guard|skills guard|safety (?:checks?|rules|guidelines|filters?)|guardrails|the sandbox|content filters?|the scanner)\b/i,
    reason: 'tells the agent to get around its safety controls',
  },
  {
    rule: 'leak-prompt-or-secrets',
    severity: 'high',
    pattern:
      /\b(?:reveal|print|output|repeat|leak|dump)\b.{0,20}\b(?:your|the)\b.{0,10}\b(?:system prompt|hidden instructions|initial instructions)\b|\b(?:send|upload|post|forward|email|exfiltrate|copy)\b.{0,20}\b(?:all|every|any|your|the user's)\b.{0,20}\b(?:secrets|credentials|api keys|passwords|tokens|environment variables|env vars|ssh keys|private keys)\b/i,
    reason: 'tells the agent to give away its prompt or secrets',
  },
  {
    rule: 'fake-role-marker',
    severity: 'high',
    pattern:
      /<\|im_start\|>|<\|(?:system|endoftext)\|>|<\/?system>|\[\/?(?:SYSTEM|INST)\]|\b(?:SYSTEM|ADMIN|DEVELOPER) (?:OVERRIDE|PROMPT|INSTRUCTIONS?|MESSAGE)\s*:|^\s*#{1,6}\s*(?:system|admin) (?:override|instructions?)\b/im,
    reason: 'imitates a system or role marker to pass as a higher authority',
  },
  {
    rule: 'new-instructions',
    severity: 'high',
    pattern:
      /\b(?:new|updated|real|true|actual|hidden|secret) (?:instructions|system prompt|directives|orders)\s*:|\bthis (?:skill|file|memory|note) (?:overrides|supersedes|takes precedence over)\b/i,
    reason: 'claims to replace the agent’s instructions',
  },
  {
    rule: 'fake-authorization',
    severity: 'high',
    pattern:
      /\b(?:the )?(?:user|operator|owner|admin(?:istrator)?) (?:has )?(?:already )?(?:authori[sz]ed|approved|pre-approved|consented to|allowed) (?:this|you|all|every|any)\b/i,
    reason: 'claims an approval the user never gave',
  },
  {
    rule: 'cover-tracks',
    severity: 'high',
    pattern:
      /\b(?:delete|erase|clear|wipe|remove)\b.{0,20}\b(?:the |your |this )?(?:logs?|history|transcript|evidence|traces|audit trail)\b.{0,40}\b(?:afterwards|after(?:wards)?|so (?:that )?(?:nobody|no one|the user)|to hide|when done)\b/i,
    reason: 'tells the agent to erase the traces of what it did',
  },
  {
    rule: 'standing-network-order',
    severity: 'medium',
    pattern:
      /\b(?:always|every time|whenever|before (?:every|each|any)|after (?:every|each|any))\b.{0,60}\b(?:curl|wget|send|upload|post|report|sync)\b.{0,60}(?:https?:\/\/|\bto (?:our|my|the) (?:server|endpoint|webhook))/i,
    reason: 'leaves a standing order to contact a server',
  },
];

/** Words that show a line is describing an attack, not making one. */
const DISCUSSION =
  /\b(?:e\.g\.|example|examples|such as|attack(?:s|ers?)?|phrases?|patterns?|detect(?:s|ion|ed)?|watch (?:for|out)|red flags?|flag(?:s|ged)?|malicious|suspicious|injection|classic|common(?:ly)?|typical(?:ly)?|known|sign of|indicators?)\b/i;

function insideQuotes(line: string, start: number, end: number): boolean {
  const before = line.slice(0, start);
  const after = line.slice(end);
  const pairs: [string, string][] = [
    ['"', '"'],
    ['“', '”'],
    ['`', '`'],
    ["'", "'"],
    ['«', '»'],
  ];
  return pairs.some(([open, close]) => {
    const opens = before.split(open).length - 1;
    if (open === close) return opens % 2 === 1 && after.includes(close);
    return before.lastIndexOf(open) > before.lastIndexOf(close) && after.includes(close);
  });
}

/** Prompt-injection findings for prose lines; `hidden` marks text a human reader would not see (HTML comments). */
export function injectionFindings(text: string, firstLine = 1, hidden = false): LineFinding[] {
  const out: LineFinding[] = [];
  text.split('\n').forEach((line, index) => {
    for (const rule of INJECTION) {
      const m = rule.pattern.exec(line);
      if (!m) continue;
      const quoted = insideQuotes(line, m.index, m.index + m[0].length) || /^\s*>/.test(line);
      // URLs are not discussion words: `collector.example/...` must not read as "example".
      const around = (t: string) => DISCUSSION.test(t.replace(/\S*(?:https?:\/\/|\.\w+\/)\S*/g, ' '));
      const discussed = around(line.slice(0, m.index)) || around(line.slice(m.index + m[0].length));
      let severity = rule.severity;
      let reason = rule.reason;
      if (hidden) {
        severity = 'critical';
        reason = `${reason}, in text hidden from human readers`;
      } else if (quoted || discussed) {
        severity = 'info';
        reason = `${reason} (quoted or discussed, not addressed to the agent)`;
      }
      out.push({
        line: firstLine + index,
        excerpt: line,
        finding: { rule: rule.rule, category: 'prompt-injection', severity, reason },
      });
    }
  });
  return out;
}

/** Instructions hidden in HTML comments: invisible when the markdown is rendered, read in full by the agent. */
export function hiddenCommentFindings(text: string): LineFinding[] {
  const out: LineFinding[] = [];
  for (const m of text.matchAll(/<!--([\s\S]*?)-->/g)) {
    const firstLine = text.slice(0, m.index).split('\n').length;
    const body = m[1]!;
    const injections = injectionFindings(body, firstLine, true);
    out.push(...injections);
    if (
      injections.length === 0 &&
      /\b(?:agent|assistant|AI|model|LLM|claude|gpt|copilot)\b/i.test(body) &&
      /\b(?:run|execute|send|upload|always|must|never|do not|don't|ignore|install|fetch)\b/i.test(body)
    ) {
      out.push({
        line: firstLine,
        excerpt: body,
        finding: {
          rule: 'hidden-instruction',
          category: 'prompt-injection',
          severity: 'high',
          reason: 'gives the agent orders inside an HTML comment that human readers do not see',
        },
      });
    }
  }
  return out;
}

const isBidi = (c: number) => (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
/** Unicode tags and the variation-selector supplement: invisible, and able to carry a whole hidden text. */
const isTag = (c: number) => (c >= 0xe0000 && c <= 0xe007f) || (c >= 0xe0100 && c <= 0xe01ef);
const ZERO_WIDTH = new Set([
  0x200b, 0x200c, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0x180e, 0x3164, 0x115f, 0x1160, 0x17b4, 0x17b5,
  0xfeff,
]);
const isPictographic = (ch: string | undefined) =>
  ch !== undefined && /\p{Extended_Pictographic}|\p{Emoji_Modifier}|\uFE0F|[\u2640\u2642]/u.test(ch);

function hex(c: number): string {
  return `<U+${c.toString(16).toUpperCase().padStart(4, '0')}>`;
}

export function unicodeFindings(text: string): LineFinding[] {
  const out: LineFinding[] = [];
  text.split('\n').forEach((line, index) => {
    const chars = Array.from(line);
    let tags = false;
    let bidi = false;
    let zeroWidth = false;
    chars.forEach((ch, k) => {
      const c = ch.codePointAt(0)!;
      if (isTag(c)) tags = true;
      else if (isBidi(c)) bidi = true;
      else if (ZERO_WIDTH.has(c) && !(c === 0xfeff && index === 0 && k === 0)) zeroWidth = true;
      // A joiner between emoji builds one emoji; anywhere else it hides a split.
      else if (c === 0x200d && !(isPictographic(chars[k - 1]) && isPictographic(chars[k + 1])))
        zeroWidth = true;
    });
    if (!tags && !bidi && !zeroWidth) return;
    const excerpt = chars
      .map((ch) => {
        const c = ch.codePointAt(0)!;
        return isTag(c) || isBidi(c) || ZERO_WIDTH.has(c) || c === 0x200d ? hex(c) : ch;
      })
      .join('');
    const add = (rule: string, severity: Severity, reason: string) =>
      out.push({ line: index + 1, excerpt, finding: { rule, category: 'hidden-unicode', severity, reason } });
    if (tags)
      add(
        'unicode-tags',
        'critical',
        'contains invisible Unicode tag characters (hidden text for the model)',
      );
    if (bidi)
      add(
        'bidi-control',
        'high',
        'contains bidirectional control characters: the text shown differs from the text read',
      );
    if (zeroWidth) add('zero-width', 'high', 'contains zero-width characters that hide or split words');
  });
  return out;
}
