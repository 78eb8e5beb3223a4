// Card HTML is untrusted: it is only ever shown in a frame sandboxed to an opaque origin
// (scripts, nothing else). Such a srcdoc frame inherits this page's Content-Security-Policy,
// whose scripts must carry the page's nonce: the card's <script> elements get it here,
// after parsing the HTML inertly (DOMParser runs nothing).

const NONCE = (document.querySelector("script[nonce]") || {}).nonce || "";

// The card's document fills its frame (plotly's charts size themselves to their container).
const FRAME_STYLE = "html,body{margin:0;height:100%;overflow:auto}body{font-family:system-ui,sans-serif}";

export function frameDocument(html) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  for (const script of doc.querySelectorAll("script")) script.setAttribute("nonce", NONCE);
  const style = doc.createElement("style");
  style.textContent = FRAME_STYLE;
  doc.head.prepend(style);
  return "<!doctype html>\n" + doc.documentElement.outerHTML;
}

export function cardFrame(title) {
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.setAttribute("data-testid", "card-frame");
  frame.title = title;
  return frame;
}
