//! Block Kit as HTML, close to what the Slack client draws: sections (text, fields, a button
//! accessory), headers, dividers, context rows, actions with styled buttons and their confirm
//! dialogs, inputs, and modals. The console shows the recorded channel with it, and its
//! snapshots make a change in our messages a reviewable diff.
//!
//! Buttons carry what a click needs (`data-action-id`, `data-block-id`, `data-value`); the
//! page's script turns a click into the `block_actions` request Slack would send.

use super::mrkdwn::{escape_html, plain, render};
use serde_json::Value;

/// A text object (`mrkdwn` or `plain_text`) as HTML.
fn text_object(text: &Value) -> String {
    let content = text["text"].as_str().unwrap_or_default();
    match text["type"].as_str() {
        Some("mrkdwn") => render(content),
        _ => plain(content),
    }
}

/// A message's or a view's blocks.
pub fn blocks(blocks: &Value) -> String {
    blocks
        .as_array()
        .map(|blocks| blocks.iter().map(block).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

fn block(block: &Value) -> String {
    match block["type"].as_str().unwrap_or_default() {
        "section" => section(block),
        "header" => format!(
            "<h3 class=\"bk-header\">{}</h3>",
            text_object(&block["text"])
        ),
        "divider" => "<hr class=\"bk-divider\">".to_string(),
        "context" => {
            let elements: Vec<String> = block["elements"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|element| match element["type"].as_str() {
                    Some("image") => image(element),
                    _ => format!("<span>{}</span>", text_object(element)),
                })
                .collect();
            format!("<div class=\"bk-context\">{}</div>", elements.join(""))
        }
        "actions" => {
            let block_id = block["block_id"].as_str().unwrap_or_default();
            let elements: Vec<String> = block["elements"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|element| element_html(element, block_id))
                .collect();
            format!("<div class=\"bk-actions\">{}</div>", elements.join(""))
        }
        "input" => input(block),
        "image" => format!("<div class=\"bk-image\">{}</div>", image(block)),
        other => format!(
            "<div class=\"bk-unknown\">[{} block]</div>",
            escape_html(other)
        ),
    }
}

fn section(block: &Value) -> String {
    let mut html = String::from("<div class=\"bk-section\"><div class=\"bk-section-body\">");
    if block.get("text").is_some() {
        html.push_str(&format!(
            "<div class=\"bk-text\">{}</div>",
            text_object(&block["text"])
        ));
    }
    if let Some(fields) = block["fields"].as_array() {
        html.push_str("<div class=\"bk-fields\">");
        for field in fields {
            html.push_str(&format!("<div>{}</div>", text_object(field)));
        }
        html.push_str("</div>");
    }
    html.push_str("</div>");
    if let Some(accessory) = block.get("accessory") {
        let block_id = block["block_id"].as_str().unwrap_or_default();
        html.push_str(&format!(
            "<div class=\"bk-accessory\">{}</div>",
            element_html(accessory, block_id)
        ));
    }
    html.push_str("</div>");
    html
}

/// Images are never fetched (the console works offline): their alt text stands in.
fn image(element: &Value) -> String {
    format!(
        "<span class=\"bk-image-alt\">[image: {}]</span>",
        escape_html(element["alt_text"].as_str().unwrap_or_default())
    )
}

fn element_html(element: &Value, block_id: &str) -> String {
    match element["type"].as_str().unwrap_or_default() {
        "button" => button(element, block_id),
        "image" => image(element),
        other => format!(
            "<span class=\"bk-unknown\">[{} element]</span>",
            escape_html(other)
        ),
    }
}

fn button(element: &Value, block_id: &str) -> String {
    let style = match element["style"].as_str() {
        Some("primary") => " bk-primary",
        Some("danger") => " bk-danger",
        _ => "",
    };
    let label = text_object(&element["text"]);
    if let Some(url) = element["url"].as_str() {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return format!("<span class=\"bk-button{style}\">{label}</span>");
        }
        return format!(
            "<a class=\"bk-button{style}\" href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">{label}</a>",
            escape_html(url)
        );
    }
    let confirm = element
        .get("confirm")
        .map(confirm_dialog)
        .unwrap_or_default();
    format!(
        "<button type=\"button\" class=\"bk-button{style}\" data-action-id=\"{}\" data-block-id=\"{}\" data-value=\"{}\">{label}</button>{confirm}",
        escape_html(element["action_id"].as_str().unwrap_or_default()),
        escape_html(block_id),
        escape_html(element["value"].as_str().unwrap_or_default()),
    )
}

/// A button's `confirm` object: the dialog the page opens before sending the click.
fn confirm_dialog(confirm: &Value) -> String {
    let style = match confirm["style"].as_str() {
        Some("danger") => " bk-danger",
        _ => " bk-primary",
    };
    format!(
        "<dialog class=\"bk-confirm\"><form method=\"dialog\"><h4>{}</h4><div class=\"bk-text\">{}</div><menu><button value=\"deny\" class=\"bk-button\">{}</button><button value=\"confirm\" class=\"bk-button{style}\">{}</button></menu></form></dialog>",
        text_object(&confirm["title"]),
        text_object(&confirm["text"]),
        text_object(&confirm["deny"]),
        text_object(&confirm["confirm"]),
    )
}

fn input(block: &Value) -> String {
    let element = &block["element"];
    let block_id = escape_html(block["block_id"].as_str().unwrap_or_default());
    let action_id = escape_html(element["action_id"].as_str().unwrap_or_default());
    let placeholder = element
        .get("placeholder")
        .map(|p| escape_html(p["text"].as_str().unwrap_or_default()))
        .unwrap_or_default();
    let required = if block["optional"].as_bool() == Some(true) {
        ""
    } else {
        " required"
    };
    let field = if element["multiline"].as_bool() == Some(true) {
        format!("<textarea id=\"{block_id}\" name=\"{action_id}\" data-block-id=\"{block_id}\" placeholder=\"{placeholder}\"{required}></textarea>")
    } else {
        format!("<input id=\"{block_id}\" name=\"{action_id}\" data-block-id=\"{block_id}\" placeholder=\"{placeholder}\"{required}>")
    };
    let hint = block
        .get("hint")
        .map(|h| format!("<div class=\"bk-hint\">{}</div>", text_object(h)))
        .unwrap_or_default();
    format!(
        "<div class=\"bk-input\"><label for=\"{block_id}\">{}</label>{field}{hint}</div>",
        text_object(&block["label"])
    )
}

/// A modal (`views.open`): its title, blocks and the submit and close buttons.
pub fn modal(view: &Value) -> String {
    let submit = view
        .get("submit")
        .map(text_object)
        .unwrap_or_else(|| "Submit".into());
    let close = view
        .get("close")
        .map(text_object)
        .unwrap_or_else(|| "Cancel".into());
    format!(
        "<form class=\"bk-modal\" method=\"dialog\"><h3 class=\"bk-modal-title\">{}</h3>{}<menu><button value=\"close\" class=\"bk-button\" formnovalidate>{close}</button><button value=\"submit\" class=\"bk-button bk-primary\">{submit}</button></menu></form>",
        text_object(&view["title"]),
        blocks(&view["blocks"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_buttons_with_what_a_click_needs() {
        let html = blocks(
            &json!([{"type": "actions", "block_id": "decide", "elements": [
                {"type": "button", "action_id": "approve", "style": "primary", "value": "{\"t\":1}",
                 "text": {"type": "plain_text", "text": "Approve"},
                 "confirm": {"title": {"type": "plain_text", "text": "Sure?"}, "text": {"type": "mrkdwn", "text": "*prod*"},
                             "confirm": {"type": "plain_text", "text": "Yes"}, "deny": {"type": "plain_text", "text": "No"}}},
                {"type": "button", "action_id": "reject", "style": "danger", "text": {"type": "plain_text", "text": "Reject"}}
            ]}]),
        );
        assert!(html.contains("<button type=\"button\" class=\"bk-button bk-primary\" data-action-id=\"approve\" data-block-id=\"decide\" data-value=\"{&quot;t&quot;:1}\">Approve</button><dialog class=\"bk-confirm\">"), "{html}");
        assert!(html.contains("<strong>prod</strong>"), "{html}");
        assert!(
            html.contains("bk-danger\" data-action-id=\"reject\""),
            "{html}"
        );
    }

    #[test]
    fn unknown_blocks_are_named_not_dropped() {
        assert_eq!(
            blocks(&json!([{"type": "rich_text<x>"}])),
            "<div class=\"bk-unknown\">[rich_text&lt;x&gt; block]</div>"
        );
    }

    #[test]
    fn a_url_button_is_a_link_and_only_an_http_one() {
        let html = blocks(
            &json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x"},
            "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": "https://example.com/\"x"}}]),
        );
        assert!(
            html.contains("<a class=\"bk-button\" href=\"https://example.com/&quot;x\""),
            "{html}"
        );
        let script = blocks(&json!([{"type": "actions", "elements": [{"type": "button",
            "text": {"type": "plain_text", "text": "Open"}, "url": "javascript:alert(1)"}]}]));
        assert!(
            !script.contains("href") && !script.contains("javascript"),
            "{script}"
        );
    }
}
