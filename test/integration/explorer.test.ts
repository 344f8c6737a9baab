import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloisterClient } from '../../node/client/index.js';
import { cleanupNodes, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';

const CHROMIUM = '/usr/bin/chromium';

let node: TestNode;
let browser: BrowserContext | undefined;
let profile: string | undefined;

beforeAll(async () => {
  // Never a silent pass: without the browser this file fails and says what to install.
  if (!existsSync(CHROMIUM)) throw new Error(`the explorer test needs Chromium at ${CHROMIUM} (Debian: apt-get install chromium)`);
  node = await startNode(tempDir());
  profile = mkdtempSync(join(tmpdir(), 'cloister-chromium-'));
  // A fresh profile (--user-data-dir), removed afterwards.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await cleanupNodes();
});

describe('the explorer page', () => {
  it('is served with a strict CSP beside the unchanged RPC', async () => {
    const page = await fetch(`${node.rpcUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${node.rpcUrl}/explorer.js`)).status).toBe(200);
    expect((await fetch(`${node.rpcUrl}/other`)).status).toBe(404);
    expect((await fetch(`${node.rpcUrl}/health`)).status).toBe(200);
    expect((await fetch(`${node.rpcUrl}/`, { method: 'PUT' })).status).toBe(405);
  });

  it('shows a transaction committed while it is open, without a reload', async () => {
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${node.rpcUrl}/`);
    await page.locator('#live', { hasText: 'live' }).waitFor();
    await page.locator('#contracts', { hasText: 'counter' }).waitFor();
    const client = new CloisterClient(node.rpcUrl);
    const receipt = await execute(client, newSigner(), 'counter', 'increment');
    const row = page.locator(`#block-rows tr[data-height="${receipt.blockHeight}"]`);
    await row.waitFor();
    await expect(row.locator('td').nth(3).textContent()).resolves.toBe('1');
    await row.click();
    const tx = page.locator(`li.tx[data-tx="${receipt.txHash}"]`);
    await tx.waitFor();
    expect(await tx.textContent()).toContain('Incremented');
    await tx.locator('button.verify').click();
    // Verified in the page by the verifier's browser build: paths, certificate and the signer's (virtual) evidence.
    const verdict = tx.locator('.verdict', { hasText: 'verified' });
    await verdict.waitFor();
    const text = await verdict.textContent();
    expect(text).toMatch(new RegExp(`^verified: in block ${receipt.blockHeight}, certified by 1 attested validators \\(virtual `));
    // The validator, with the last evidence its enclave put on the ledger (as a proposer).
    await page.reload();
    const evidence = page.locator('#validators td.evidence');
    await evidence.filter({ hasText: /^block \d+, .* \(virtual / }).waitFor();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('is not served with --no-explorer', async () => {
    const off = await startNode(tempDir(), ['--no-explorer']);
    const page = await fetch(`${off.rpcUrl}/`);
    // GET / is what it was before the explorer: the RPC's refusal of a GET.
    expect(page.status).toBe(405);
    expect((await fetch(`${off.rpcUrl}/explorer.js`)).status).toBe(404);
    await off.stop();
  });
});
