// A helper module imported by workflows with a relative path.
export enum Tone {
  Plain = 'plain',
  Loud = 'loud',
}

export interface Greeting {
  name: string;
  tone: Tone;
}

export function render<T extends Greeting>(greeting: T): string {
  const text = `Hello, ${greeting.name}!`;
  return greeting.tone === Tone.Loud ? text.toUpperCase() : text;
}
