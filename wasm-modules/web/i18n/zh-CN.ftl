# 学习应用的文字,简体中文。各语言的键相同。
app-name = 学习
sign-in-title = 登录
sign-in-heading = 登录开始学习
username = 用户名
password = 密码
sign-in-submit = 登录
sign-in-failed = 用户名和密码不匹配。请检查后重试。
language-switch = 语言
home-title = 首页
welcome = 欢迎,{ $name }
my-courses = 我的课程
course-counts = { $lessons } 节课,{ $quizzes } 个测验
no-courses = 这个节点上还没有课程。
sign-out = 退出登录
