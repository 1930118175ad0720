// Fills the report template with a data object exactly as src/report does:
// the placeholder is replaced by the JSON, with "</" written as "<\/".
export const PLACEHOLDER = '/*TOKMAP_DATA*/null';

export function fillTemplate(template, data) {
  const at = template.indexOf(PLACEHOLDER);
  if (at < 0 || template.indexOf(PLACEHOLDER, at + 1) >= 0) throw new Error('the template must hold the data placeholder exactly once');
  const json = (typeof data === 'string' ? data : JSON.stringify(data)).replace(/<\//g, '<\\/');
  return template.slice(0, at) + json + template.slice(at + PLACEHOLDER.length);
}
