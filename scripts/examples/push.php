<?php
// push.php: what a PHP backend (php-fpm, a cron job) does with fastws's
// Application API: push a message to a user on every connection they
// have, after listing who is online. Needs php-cli and php-curl.
//
//   FASTWS_API=http://127.0.0.1:19980 FASTWS_API_KEY=... php push.php u123 "your order shipped"
//
// Prints the answers as JSON lines; exits 1 if a request fails.

$api = rtrim(getenv('FASTWS_API') ?: 'http://127.0.0.1:19980', '/');
$key = getenv('FASTWS_API_KEY');
if ($key === false || $key === '') {
    fwrite(STDERR, "set FASTWS_API_KEY to the [api] key\n");
    exit(2);
}
if ($argc < 3) {
    fwrite(STDERR, "usage: php push.php USER TEXT\n");
    exit(2);
}
[$_, $user, $text] = $argv;

// fastws calls one API endpoint and returns its decoded JSON answer.
function fastws(string $method, string $path, ?array $body = null): array
{
    global $api, $key;
    $ch = curl_init($api . $path);
    $headers = ['Authorization: Bearer ' . $key];
    curl_setopt($ch, CURLOPT_CUSTOMREQUEST, $method);
    curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
    curl_setopt($ch, CURLOPT_TIMEOUT, 5);
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
        curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($body));
    }
    curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
    $out = curl_exec($ch);
    $code = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    if ($out === false || $code !== 200) {
        fwrite(STDERR, "$method $path: HTTP $code " . ($out === false ? curl_error($ch) : $out) . "\n");
        exit(1);
    }
    return json_decode($out, true);
}

// Who is online: counts, then the lobby's members (everyone).
echo json_encode(['online' => fastws('GET', '/api/v1/online')]), "\n";
$members = fastws('GET', '/api/v1/members?room=lobby')['members'];
foreach ($members as $m) {
    echo json_encode(['member' => $m]), "\n";       // uid, nick, user, protocol, instance, node, since
}

// Push to the user, on every connection they have.
$sent = fastws('POST', '/api/v1/send', ['user' => $user, 'text' => $text]);
echo json_encode(['send' => $sent]), "\n";          // {"delivered": N}
