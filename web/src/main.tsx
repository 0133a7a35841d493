// Entry point: mount the app. No inline scripts anywhere (the server's CSP forbids them).

import { render } from 'preact';
import { App } from './app/App';
import { takeSsoReturn } from './app/Auth';
import './styles.css';
import { applyTheme, loadTheme } from './app/local';
import { registerServiceWorker } from './app/serviceWorker';

// A single sign-on's one-time ticket (or its error) out of the address bar
// before anything else runs: it logs in whoever redeems it first.
takeSsoReturn();

// The theme chosen on this device, before the first paint (no inline scripts: CSP).
applyTheme(loadTheme());

// Size the app to the visual viewport, so an on-screen keyboard pushes the
// composer up instead of covering it (browsers that resize the layout
// viewport anyway give the same figure).
const viewport = window.visualViewport;
if (viewport) {
  const fit = () => {
    document.documentElement.style.setProperty('--app-height', `${Math.round(viewport.height)}px`);
    // iOS scrolls the page under the keyboard; keep the app in view.
    if (viewport.offsetTop > 0) window.scrollTo(0, 0);
  };
  viewport.addEventListener('resize', fit);
  viewport.addEventListener('scroll', fit);
  fit();
}

// A file dropped outside the chat (which takes it as an attachment) would
// otherwise make the browser open it in place of the app.
for (const type of ['dragover', 'drop'] as const) {
  window.addEventListener(type, (e) => {
    if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
  });
}

// The service worker shows push notifications while Hark is closed (public/sw.js).
void registerServiceWorker();

const root = document.getElementById('app');
if (root) render(<App />, root);
