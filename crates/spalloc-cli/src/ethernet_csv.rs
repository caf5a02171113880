//! The CSV of Ethernet-connected chips: header `x,y,hostname`, one sorted row per board.

use spalloc_protocol::Connection;

/// The CSV text, every line ending in `\n`, rows sorted by chip coordinate.
pub fn render_ethernet_csv(connections: &[Connection]) -> String {
    let mut sorted: Vec<&Connection> = connections.iter().collect();
    sorted.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut text = String::from("x,y,hostname\n");
    for Connection([x, y], hostname) in sorted {
        text.push_str(&format!("{x},{y},{hostname}\n"));
    }
    text
}

/// The hostname of the board with the smallest chip coordinate (chip (0, 0)
/// for any allocation), as the reference picks it.
pub fn first_hostname(connections: &[Connection]) -> Option<&str> {
    connections
        .iter()
        .min_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)))
        .map(|connection| connection.1.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_with_header() {
        let connections = vec![
            Connection([4, 8], "10.0.0.5".to_owned()),
            Connection([0, 0], "10.0.0.1".to_owned()),
        ];
        assert_eq!(
            render_ethernet_csv(&connections),
            "x,y,hostname\n0,0,10.0.0.1\n4,8,10.0.0.5\n"
        );
        assert_eq!(render_ethernet_csv(&[]), "x,y,hostname\n");
        assert_eq!(first_hostname(&connections), Some("10.0.0.1"));
        assert_eq!(first_hostname(&[]), None);
    }
}
