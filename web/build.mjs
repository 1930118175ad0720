#!/usr/bin/env node
// Builds web/dist/report-template.html: one self-contained HTML file with the page's JS and
// CSS inlined (npm libraries bundled by esbuild; nothing is fetched at run time). The data
// placeholder /*TOKMAP_DATA*/null appears exactly once, inside <script id="tokmap-data">.
// Also writes dist/report-sample.html when web/sample-data.json exists (for looking at it).
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLACEHOLDER, fillTemplate } from './report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, 'src');
const dist = path.join(here, 'dist');
fs.mkdirSync(dist, { recursive: true });

const js = await esbuild.build({
  entryPoints: [path.join(src, 'main.js')],
  bundle: true, minify: true, format: 'iife', target: ['es2020'], write: false, legalComments: 'none',
  logLevel: 'warning',
});
const css = await esbuild.build({
  entryPoints: [path.join(src, 'style.css')], bundle: true, minify: true, write: false, logLevel: 'warning',
});
let jsText = js.outputFiles[0].text.trim();
let cssText = css.outputFiles[0].text.trim();
// Inline-safe: nothing may close the surrounding element early.
jsText = jsText.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
cssText = cssText.replace(/<\/(style)/gi, '<\\/$1');
if (jsText.includes(PLACEHOLDER) || cssText.includes(PLACEHOLDER)) throw new Error('the bundle must not contain the data placeholder');

let html = fs.readFileSync(path.join(src, 'template.html'), 'utf8');
const put = (marker, text) => {
  if (html.split(marker).length !== 2) throw new Error(`template marker ${marker} must appear once`);
  html = html.replace(marker, () => text);
};
put('/*@INLINE_CSS@*/', cssText);
put('/*@INLINE_JS@*/', jsText);
if (html.split(PLACEHOLDER).length !== 2) throw new Error('the placeholder must appear exactly once');
const slot = `<script type="application/json" id="tokmap-data">${PLACEHOLDER}</script>`;
if (!html.includes(slot)) throw new Error('the placeholder must sit inside <script type="application/json" id="tokmap-data">');
if (/\b(src|href)\s*=\s*["']?(https?:)?\/\//i.test(html)) throw new Error('the template must not reference network resources');

const out = path.join(dist, 'report-template.html');
fs.writeFileSync(out + '.tmp', html);
fs.renameSync(out + '.tmp', out);
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`web: ${path.relative(process.cwd(), out)} ${kb(Buffer.byteLength(html))} (js ${kb(Buffer.byteLength(jsText))}, css ${kb(Buffer.byteLength(cssText))})`);

const sample = path.join(here, 'sample-data.json');
if (fs.existsSync(sample)) {
  fs.writeFileSync(path.join(dist, 'report-sample.html'), fillTemplate(html, fs.readFileSync(sample, 'utf8')));
}
