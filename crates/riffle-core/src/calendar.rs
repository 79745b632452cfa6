//! English calendar names, for the date patterns services format and
//! parse (Firehose prefixes, Analytics' SimpleDateFormat).

/// Month names, January first.
pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
